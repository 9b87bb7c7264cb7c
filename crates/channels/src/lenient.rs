//! Reading a few values out of an unverified body without building the rest, as tolerantly as
//! the parsers read the verified body (`serde_json::Value` indexing): a value that is not an
//! object where one is expected is skipped, not an error, and of duplicate keys the last wins. So
//! the accounts found before verifying are always the accounts the parser later trusts.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// The value at a path of object keys (`None` when any step is missing or not an object).
pub struct Dig<'a>(pub &'a [&'a str]);

impl<'de> DeserializeSeed<'de> for Dig<'_> {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Consumes and forgets anything that is not what a visitor looks for.
macro_rules! none_for_scalars {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}
pub(crate) use none_for_scalars;

impl<'de> Visitor<'de> for Dig<'_> {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    none_for_scalars!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != *first {
                map.next_value::<IgnoredAny>()?;
            } else if rest.is_empty() {
                found = Some(map.next_value::<Value>()?);
            } else {
                found = map.next_value_seed(Dig(rest))?;
            }
        }
        Ok(found)
    }
}

/// Each element of a list, read with `seed` (`None` when the value is not a list).
pub struct Each<F>(pub F);

impl<'de, T, F> DeserializeSeed<'de> for Each<F>
where
    F: FnMut() -> T,
    T: DeserializeSeed<'de>,
{
    type Value = Option<Vec<T::Value>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T, F> Visitor<'de> for Each<F>
where
    F: FnMut() -> T,
    T: DeserializeSeed<'de>,
{
    type Value = Option<Vec<T::Value>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    none_for_scalars!();
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed((self.0)())? {
            out.push(v);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn dig(body: &str, path: &[&str]) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_str(body);
        Dig(path).deserialize(&mut de).unwrap()
    }

    #[test]
    fn digging_agrees_with_indexing_a_value() {
        let bodies = [
            r#"{"a":{"b":1}}"#,
            r#"{"a":{"b":1},"a":{"c":2}}"#,
            r#"{"a":{"b":1,"b":"x"}}"#,
            r#"{"a":[{"b":1}]}"#,
            r#"{"a":5}"#,
            r#"[1,2]"#,
            r#"null"#,
            r#"{"a":{"b":{"deep":[1,{"x":null}]}}}"#,
        ];
        for b in bodies {
            let v: Value = serde_json::from_str(b).unwrap();
            let want = match &v["a"]["b"] {
                Value::Null if v["a"].get("b").is_none() => None,
                other => Some(other.clone()),
            };
            assert_eq!(dig(b, &["a", "b"]), want, "{b}");
        }
    }

    #[test]
    fn each_reads_every_element_and_tolerates_what_is_not_a_list() {
        let read = |body: &str| {
            let mut de = serde_json::Deserializer::from_str(body);
            Each(|| Dig(&["id"])).deserialize(&mut de).unwrap()
        };
        assert_eq!(
            read(r#"[{"id":1},5,{"id":"x"},{}]"#),
            Some(vec![Some(json!(1)), None, Some(json!("x")), None])
        );
        assert_eq!(read(r#"{"id":1}"#), None);
        assert_eq!(read("7"), None);
    }
}
