//! `[log]`: text by default with numbers masked; `json`; a bad format
//! named with its line.

use super::*;

#[test]
fn log_defaults_to_text_with_numbers_masked() {
    let l = parse(BASE, "t.toml").unwrap();
    assert_eq!(l.log.format, LogFormat::Text);
    assert!(l.log.mask_numbers);
    assert_eq!(l.log.level, "info");
    let text =
        format!("{BASE}\n[log]\nformat = \"json\"\nmask_numbers = false\nlevel = \"debug\"\n");
    let l = parse(&text, "t.toml").unwrap();
    assert_eq!(l.log.format, LogFormat::Json);
    assert!(!l.log.mask_numbers);
    assert_eq!(l.log.level, "debug");
}

#[test]
fn log_bad_format_is_refused_with_its_line() {
    let text = format!("{BASE}\n[log]\nlevel = \"info\"\nformat = \"xml\"\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let line = line_of(&text, "format = \"xml\"");
    assert_eq!(
        e,
        format!("t.toml:{line}: log.format: \"xml\": expected \"text\" or \"json\"")
    );
    let text = format!("{BASE}\n[log]\nmask_numbers = \"yes\"\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    let line = line_of(&text, "mask_numbers = ");
    assert!(e.starts_with(&format!("t.toml:{line}: ")), "{e}");
    let text = format!("{BASE}\n[log]\nformats = \"json\"\n");
    let e = parse(&text, "t.toml").unwrap_err().to_string();
    assert!(e.contains("unknown field `formats`"), "{e}");
}
