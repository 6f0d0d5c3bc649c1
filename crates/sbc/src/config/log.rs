//! `[log]`: the filter, the format (text or JSON lines) and whether phone
//! numbers are masked in log lines.

use super::error::{ConfigError, Ctx};
use super::schema::LogSection;

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// `2025-01-01T00:00:00Z  INFO new call call=1 …` (tracing's default).
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and the
    /// line's fields at the top level.
    Json,
}

/// The checked `[log]` section.
#[derive(Debug, Clone)]
pub(crate) struct LogSettings {
    /// tracing filter; `RUST_LOG` overrides.
    pub(crate) level: String,
    pub(crate) format: LogFormat,
    /// Phone numbers in log lines show their last 4 digits only.
    pub(crate) mask_numbers: bool,
}

pub(crate) fn check_log(ctx: &Ctx<'_>, l: &LogSection) -> Result<LogSettings, ConfigError> {
    let format = match l.format.get_ref().as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(ctx.err(
                Some(&l.format.span()),
                "log.format",
                format!("{other:?}: expected \"text\" or \"json\""),
            ))
        }
    };
    Ok(LogSettings {
        level: l.level.clone(),
        format,
        mask_numbers: l.mask_numbers,
    })
}
