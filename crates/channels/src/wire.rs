//! Reading providers' times. Every provider states its unit (channels.md, "Timestamps": Meta
//! messaging ms, Meta `changes` s, WhatsApp string s, Zalo string ms, Telegram int s, Shopee s),
//! but the same field arrives as a number or as a numeric string (Meta's dashboard test sends
//! `"timestamp":"1700000000"`), so both are accepted. Each is read in its provider's unit; a value
//! that makes no sense in it (that test message's seconds where milliseconds are due: 1970) is
//! left to `core::ingest::plausible_time`, which falls back to the receive time.

use serde_json::Value;
use switchboard_core::Timestamp;

/// A number or a numeric string (integer, or a decimal cut to its whole part), else `None`.
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 24 {
                return None;
            }
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

/// A time the provider gives in milliseconds.
pub fn millis(v: &Value) -> Option<Timestamp> {
    number(v).map(Timestamp)
}

/// A time the provider gives in seconds.
pub fn seconds(v: &Value) -> Option<Timestamp> {
    number(v).map(|s| Timestamp(s.saturating_mul(1000)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_numeric_strings_in_either_unit() {
        let t = Timestamp(1_700_000_000_000);
        let early = Timestamp(1_700_000_000);
        let late = Timestamp(1_700_000_000_000_000);
        for (v, ms, s) in [
            (json!(1_700_000_000_000_i64), Some(t), Some(late)),
            (json!("1700000000000"), Some(t), Some(late)),
            (json!(1_700_000_000), Some(early), Some(t)),
            (json!("1700000000"), Some(early), Some(t)),
            (json!(" 1700000000 "), Some(early), Some(t)),
            (json!(1_700_000_000.5), Some(early), Some(t)),
            (json!("1700000000.25"), Some(early), Some(t)),
            (json!(0), Some(Timestamp(0)), Some(Timestamp(0))),
            (json!(""), None, None),
            (json!("soon"), None, None),
            (json!("1e400"), None, None),
            (json!(null), None, None),
            (json!({"t": 1}), None, None),
            (json!(u64::MAX), None, None),
            (json!("9".repeat(30)), None, None),
            (json!(1e300), None, None),
        ] {
            assert_eq!((millis(&v), seconds(&v)), (ms, s), "{v}");
        }
        // Huge values saturate, never overflow.
        assert_eq!(seconds(&json!(i64::MAX / 10)).map(|t| t.0 > 0), Some(true));
    }
}
