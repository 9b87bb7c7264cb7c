//! Reading a customer's answer: phone numbers (Vietnamese formats to E.164), emails, numbers,
//! choices; and finding a phone or an email inside a message (the `has_phone` / `has_email`
//! triggers).

use super::model::{AnswerKind, ChoiceSpec};
use crate::text;
use crate::validate::Email;

/// A phone number in E.164 (`+84912345678`), from the ways Vietnamese customers write one:
/// `0912 345 678`, `0912.345.678`, `0912-345-678`, `+84 912 345 678`, `84912345678`,
/// `(+84) 912345678`, `+84 0912 345 678`. Mobile numbers have 9 digits after the country code,
/// landlines (`02x`) 10. Another country's number is accepted with its `+` (8–15 digits).
pub fn phone_e164(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let mut digits = String::with_capacity(raw.len());
    let mut plus = false;
    for c in raw.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if digits.is_empty() && !plus => plus = true,
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return None,
        }
    }
    let national = match digits.strip_prefix("84") {
        // `84…` with or without the `+` is Vietnam's code (our own numbers start with 0); a
        // trunk 0 after it (`+84 0912…`) is a common slip.
        Some(rest) if plus || rest.len() >= 9 => rest
            .strip_prefix('0')
            .filter(|r| r.len() >= 9)
            .unwrap_or(rest),
        _ if plus => {
            return (8..=15)
                .contains(&digits.len())
                .then(|| format!("+{digits}"));
        }
        _ => digits.strip_prefix('0')?,
    };
    let ok = match national.as_bytes().first() {
        // Mobile: 3x, 5x, 7x, 8x, 9x and 9 digits.
        Some(b'3' | b'5' | b'7' | b'8' | b'9') => national.len() == 9,
        // Landline: 2xx and 10 digits.
        Some(b'2') => national.len() == 10,
        _ => false,
    };
    ok.then(|| format!("+84{national}"))
}

/// A number as typed: digits with `.` or `,` grouping thousands (`1.500.000`, `2 500`) or one
/// decimal separator (`1,5`, `2.25`); no units (`150k` is not a number). Returned in plain form
/// (`1500000`, `1.5`). A single `,` followed by three digits reads as a decimal (`1,500` → `1.500`).
pub fn number(raw: &str) -> Option<String> {
    let s: String = raw.trim().chars().filter(|c| *c != ' ').collect();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.as_str()),
    };
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        return None;
    }
    let seps: Vec<char> = body.chars().filter(|c| !c.is_ascii_digit()).collect();
    let groups: Vec<&str> = body.split(['.', ',']).collect();
    if groups.iter().any(|g| g.is_empty()) {
        return None;
    }
    let plain = if seps.is_empty() {
        body.to_owned()
    } else if seps.iter().all(|c| *c == seps[0])
        && groups.len() >= 2
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups[0].len() <= 3
        && (seps.len() > 1 || seps[0] == '.')
    {
        // Thousands grouped the Vietnamese way: `1.500.000` (one `.` followed by three digits
        // is grouping too: `150.000`).
        groups.concat()
    } else if seps.len() == 1 {
        // One decimal separator: `1,5` or `1.25`.
        format!("{}.{}", groups[0], groups[1])
    } else {
        return None;
    };
    let plain = plain.trim_start_matches('0');
    let plain = if plain.is_empty() || plain.starts_with('.') {
        format!("0{plain}")
    } else {
        plain.to_owned()
    };
    Some(if neg { format!("-{plain}") } else { plain })
}

/// The choice an answer picks: by its value (a button's payload), its number in the list
/// (`2`), or its title (folded, so `giao hang nhanh` picks `Giao hàng nhanh`).
pub fn pick_choice<'c>(choices: &'c [ChoiceSpec], answer: &str) -> Option<&'c ChoiceSpec> {
    let trimmed = answer.trim();
    if let Some(c) = choices.iter().find(|c| c.value == trimmed) {
        return Some(c);
    }
    if let Ok(n) = trimmed.trim_end_matches(['.', ')']).parse::<usize>() {
        return n.checked_sub(1).and_then(|i| choices.get(i));
    }
    let words = text::words(trimmed);
    if words.is_empty() {
        return None;
    }
    choices
        .iter()
        .find(|c| text::words(&c.title) == words || text::words(&c.value) == words)
}

/// Why an answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Blank,
    NotANumber,
    NotAPhone,
    NotAnEmail,
    NotAChoice,
}

/// The value to save for an answer to a question of this kind, and the choice it picked.
pub fn accept<'k>(
    kind: &'k AnswerKind,
    answer: &str,
) -> Result<(String, Option<&'k ChoiceSpec>), Rejected> {
    if answer.trim().is_empty() {
        return Err(Rejected::Blank);
    }
    match kind {
        AnswerKind::Text {} => Ok((answer.trim().to_owned(), None)),
        AnswerKind::Number {} => number(answer)
            .map(|n| (n, None))
            .ok_or(Rejected::NotANumber),
        AnswerKind::Phone {} => phone_e164(answer)
            .map(|p| (p, None))
            .ok_or(Rejected::NotAPhone),
        AnswerKind::Email {} => Email::parse(answer)
            .map(|e| (e.into_inner(), None))
            .map_err(|_| Rejected::NotAnEmail),
        AnswerKind::Choice { choices } => pick_choice(choices, answer)
            .map(|c| (c.value.clone(), Some(c)))
            .ok_or(Rejected::NotAChoice),
    }
}

/// The first phone number written in a message (`Số em 0912.345.678 nhé` → `+84912345678`):
/// from every place a number may begin (not inside a word), the digits with the separators people
/// put between them are tried at each end of a digit group.
pub fn find_phone(message: &str) -> Option<String> {
    let chars: Vec<char> = message.chars().collect();
    for start in 0..chars.len() {
        let c = chars[start];
        let begins = c.is_ascii_digit() || c == '+' || c == '(';
        if !begins || (start > 0 && chars[start - 1].is_alphanumeric()) {
            continue;
        }
        let mut digits = 0;
        for end in start..chars.len() {
            let d = chars[end];
            if d.is_ascii_digit() {
                digits += 1;
                if digits > 15 {
                    break;
                }
                let next = chars.get(end + 1);
                if !next.is_some_and(|n| n.is_alphanumeric())
                    && let Some(p) = phone_e164(&chars[start..=end].iter().collect::<String>())
                {
                    return Some(p);
                }
            } else if !matches!(d, ' ' | '.' | '-' | '(' | ')' | '+') {
                break;
            }
        }
    }
    None
}

/// The first email address written in a message.
pub fn find_email(message: &str) -> Option<String> {
    message
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '(' | ')'))
        .filter(|w| w.contains('@'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .find_map(|w| Email::parse(w).ok())
        .map(Email::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_phones_become_e164() {
        for (raw, want) in [
            ("0912 345 678", Some("+84912345678")),
            ("0912.345.678", Some("+84912345678")),
            ("0912-345-678", Some("+84912345678")),
            ("+84 912 345 678", Some("+84912345678")),
            ("84912345678", Some("+84912345678")),
            ("(+84) 912345678", Some("+84912345678")),
            ("+84 0912 345 678", Some("+84912345678")),
            ("84 0912 345 678", Some("+84912345678")),
            ("+84 912 345", None),
            ("0389999999", Some("+84389999999")),
            // A Hanoi landline: 024 + 8 digits.
            ("024 3825 1234", Some("+842438251234")),
            ("+1 415 555 0100", Some("+14155550100")),
            ("abc", None),
            ("", None),
            ("0912 345 67", None),
            ("0912 345 6789", None),
            ("0112345678", None),
            ("912345678", None),
            ("0912x345678", None),
            ("++84912345678", None),
        ] {
            assert_eq!(phone_e164(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn numbers_as_vietnamese_customers_type_them() {
        for (raw, want) in [
            ("42", Some("42")),
            ("1.500.000", Some("1500000")),
            ("150.000", Some("150000")),
            ("1,500,000", Some("1500000")),
            ("1,5", Some("1.5")),
            ("2.25", Some("2.25")),
            ("-3", Some("-3")),
            ("007", Some("7")),
            ("0", Some("0")),
            ("abc", None),
            ("1..2", None),
            ("1.2.3", None),
            ("", None),
        ] {
            assert_eq!(number(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn phones_and_emails_are_found_inside_messages() {
        for (msg, want) in [
            ("Số em 0912.345.678 nhé", Some("+84912345678")),
            ("sdt: +84 912 345 678", Some("+84912345678")),
            ("gọi 0912345678!", Some("+84912345678")),
            ("mã đơn 123456", None),
            ("đơn 123456 số 0987654321", Some("+84987654321")),
            ("giá 150.000đ", None),
            ("abc0912345678", None),
            ("no phone here", None),
        ] {
            assert_eq!(find_phone(msg).as_deref(), want, "{msg:?}");
        }
        for (msg, want) in [
            ("mail em: Lan@Shop.vn.", Some("lan@shop.vn")),
            ("<an@x.com>", Some("an@x.com")),
            ("@shop", None),
            ("không có", None),
        ] {
            assert_eq!(find_email(msg).as_deref(), want, "{msg:?}");
        }
    }

    #[test]
    fn choices_by_payload_number_or_title() {
        let choices = vec![
            ChoiceSpec {
                title: "Giao hàng nhanh".into(),
                value: "fast".into(),
                next: None,
            },
            ChoiceSpec {
                title: "Nhận tại cửa hàng".into(),
                value: "pickup".into(),
                next: None,
            },
        ];
        for (answer, want) in [
            ("fast", Some("fast")),
            ("2", Some("pickup")),
            ("1.", Some("fast")),
            ("giao hang nhanh", Some("fast")),
            ("NHẬN TẠI CỬA HÀNG", Some("pickup")),
            ("3", None),
            ("0", None),
            ("ship", None),
        ] {
            assert_eq!(
                pick_choice(&choices, answer).map(|c| c.value.as_str()),
                want,
                "{answer:?}"
            );
        }
    }

    #[test]
    fn answers_by_kind() {
        let ok = |k: &AnswerKind, a: &str| accept(k, a).map(|(v, _)| v);
        assert_eq!(ok(&AnswerKind::Text {}, "  Lan  "), Ok("Lan".into()));
        assert_eq!(ok(&AnswerKind::Text {}, "   "), Err(Rejected::Blank));
        assert_eq!(ok(&AnswerKind::Number {}, "2"), Ok("2".into()));
        assert_eq!(ok(&AnswerKind::Number {}, "hai"), Err(Rejected::NotANumber));
        assert_eq!(
            ok(&AnswerKind::Phone {}, "0912 345 678"),
            Ok("+84912345678".into())
        );
        assert_eq!(ok(&AnswerKind::Phone {}, "abc"), Err(Rejected::NotAPhone));
        assert_eq!(
            ok(&AnswerKind::Email {}, "Lan@Shop.VN"),
            Ok("lan@shop.vn".into())
        );
        assert_eq!(ok(&AnswerKind::Email {}, "lan@"), Err(Rejected::NotAnEmail));
    }
}
