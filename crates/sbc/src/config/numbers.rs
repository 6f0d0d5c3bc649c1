//! Number handling shared by trunks and routes: regular expressions (with
//! the regex error in the message), normalisation rules, E.164.

use toml::Spanned;

use super::error::{ConfigError, Ctx};
use super::schema::{AppliesName, RuleSection};

pub(super) fn compile(
    ctx: &Ctx<'_>,
    re: &Spanned<String>,
    field: &str,
) -> Result<routing::regex::Regex, ConfigError> {
    routing::regex::Regex::new(re.get_ref()).map_err(|e| {
        ctx.err(
            Some(&re.span()),
            field,
            format!("bad regular expression {:?}: {e}", re.get_ref()),
        )
    })
}

pub(super) fn rules(
    ctx: &Ctx<'_>,
    rules: &[RuleSection],
    field: &str,
) -> Result<routing::Normaliser, ConfigError> {
    let mut out = Vec::with_capacity(rules.len());
    for (j, r) in rules.iter().enumerate() {
        let pattern = compile(ctx, &r.pattern, &format!("{field}[{j}].match"))?;
        // `$name` references to groups that do not exist expand to nothing:
        // catch the usual typo of a group number beyond the pattern's.
        let groups = pattern.captures_len();
        let replace = r.replace.get_ref();
        let mut rest = replace.as_str();
        while let Some(pos) = rest.find('$') {
            rest = &rest[pos + 1..];
            let digits: String = rest
                .trim_start_matches('{')
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                if n >= groups {
                    return Err(ctx.err(
                        Some(&r.replace.span()),
                        &format!("{field}[{j}].replace"),
                        format!(
                            "${n} refers to a group the pattern {:?} does not have",
                            r.pattern.get_ref()
                        ),
                    ));
                }
            }
        }
        out.push(routing::NumberRule {
            pattern,
            replace: replace.clone(),
            applies: match r.applies.unwrap_or(AppliesName::Both) {
                AppliesName::Called => routing::Applies::Called,
                AppliesName::Calling => routing::Applies::Calling,
                AppliesName::Both => routing::Applies::Both,
            },
        });
    }
    Ok(routing::Normaliser { rules: out })
}

/// `+` and 2 to 15 digits, the first not 0.
pub(super) fn is_e164(n: &str) -> bool {
    let d = n.strip_prefix('+').unwrap_or("");
    (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}
