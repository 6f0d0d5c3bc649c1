//! Located errors: `FILE:LINE: FIELD: message`, the line found from a
//! `toml::Spanned` byte range of the text.

use std::fmt;
use std::ops::Range;

/// A configuration error: file, line, field, message.
#[derive(Debug)]
pub(crate) struct ConfigError {
    file: String,
    line: Option<usize>,
    field: String,
    msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error that names no line: a file that cannot be read, a TLS
    /// profile whose files do not load.
    pub(super) fn unlocated(file: &str, field: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: None,
            field: field.to_owned(),
            msg: msg.into(),
        }
    }

    /// A syntax or type error found by the TOML parser: it names the line
    /// but not the field.
    pub(super) fn from_toml(e: &toml::de::Error, text: &str, file: &str) -> ConfigError {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        ConfigError {
            file: file.to_owned(),
            line,
            field: String::new(),
            msg: e.message().to_owned(),
        }
    }
}

/// The text being checked and its name: turns spans into lines.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    pub(super) fn line(&self, span: &Range<usize>) -> Option<usize> {
        if span.start == 0 && span.end == 0 {
            return None;
        }
        Some(
            self.text[..span.start.min(self.text.len())]
                .matches('\n')
                .count()
                + 1,
        )
    }

    pub(super) fn err(
        &self,
        span: Option<&Range<usize>>,
        field: &str,
        msg: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: span.and_then(|s| self.line(s)),
            field: field.to_owned(),
            msg: msg.into(),
        }
    }
}
