//! The serde `Deserializer` behind [`Query`](super::Query): it reads a struct from
//! the query-string multimap ([`Params`]), one field per parameter, in the order the
//! fields are declared; parameters no field names are ignored.
//!
//! A scalar (string, number, boolean, UUID, enum) reads the parameter's last value.
//! A list (`Vec<T>`) reads every value, comma-joined ones split and trimmed, empty
//! pieces dropped. Booleans are `true`/`false`/`1`/`0`.
//!
//! An empty value is never skipped silently: it reaches the field's type, so that
//! `?project_id=` (or `?ids=`) is refused, since a dropped filter would widen the
//! answer. Fields that read an empty value as absent say so with [`empty_as_none`]
//! (optional strings, numbers, booleans and enums, as `?org_name=`) or
//! [`without_empties`] (lists of strings).
//!
//! Every error names its parameter: "`limit` must be a whole number, got `ten`".

use super::Params;
use serde::de::value::{SeqDeserializer, StrDeserializer};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, Expected, IntoDeserializer, Unexpected, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// The name by which [`empty_as_none`] asks for "absent if empty"; only this
/// deserializer knows it (elsewhere it is an ordinary newtype).
const EMPTY_AS_NONE: &str = "$castellan::EmptyAsNone";

/// For `#[serde(default, deserialize_with = "empty_as_none")]` on an `Option<T>`
/// field: a parameter given with no value (`?org_name=`) reads as absent. Not for
/// UUID filters, where an empty value is refused because dropping the filter would
/// widen the answer.
pub fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OrNone<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for OrNone<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a value or nothing")
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            T::deserialize(d).map(Some)
        }

        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            T::deserialize(d).map(Some)
        }
    }

    deserializer.deserialize_newtype_struct(EMPTY_AS_NONE, OrNone(PhantomData))
}

/// For `#[serde(default, deserialize_with = "without_empties")]` on a `Vec<String>`:
/// a value with nothing in it (`?email=`) adds nothing to the list.
pub fn without_empties<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let mut list = Vec::<String>::deserialize(deserializer)?;
    list.retain(|s| !s.is_empty());
    Ok(list)
}

/// A query-string error. Inside a value it says what was wrong with it; once it
/// leaves the value it is a whole message naming the parameter.
#[derive(Debug)]
pub struct ParamError(Problem);

#[derive(Debug)]
enum Problem {
    /// A whole message.
    Said(String),
    /// "`key` must be {what}, got `{got}`"; `got` is the last value unless set, and
    /// `each` marks one value of a list.
    NotA { what: String, got: Option<String>, each: bool },
    /// What a type's own check says about the value, to follow the parameter's name:
    /// "must be at least 0, got `-1`".
    Custom(String),
}

impl ParamError {
    fn not_a(what: impl Into<String>, got: &str, each: bool) -> ParamError {
        ParamError(Problem::NotA { what: what.into(), got: Some(got.to_owned()), each })
    }

    /// The whole message, for parameter `key` whose values were `values`.
    fn at(self, key: &str, values: &[String]) -> ParamError {
        let message = match self.0 {
            Problem::Said(m) => m,
            Problem::Custom(m) => format!("`{key}` {m}"),
            Problem::NotA { what, got, each } => {
                let got = got.as_deref().unwrap_or_else(|| last(values));
                let got = if got.is_empty() { "an empty value".to_owned() } else { format!("`{got}`") };
                let whose = if each { format!("each value of `{key}`") } else { format!("`{key}`") };
                format!("{whose} must be {what}, got {got}")
            }
        };
        ParamError(Problem::Said(message))
    }

    /// The message for the client.
    pub fn into_message(self) -> String {
        match self.0 {
            Problem::Said(m) | Problem::Custom(m) => m,
            Problem::NotA { what, .. } => format!("a parameter must be {what}"),
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Problem::Said(m) | Problem::Custom(m) => f.write_str(m),
            Problem::NotA { what, .. } => write!(f, "must be {what}"),
        }
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ParamError(Problem::Custom(msg.to_string()))
    }

    fn invalid_type(_: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ParamError(Problem::NotA { what: exp.to_string(), got: None, each: false })
    }

    fn invalid_value(_: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ParamError(Problem::NotA { what: exp.to_string(), got: None, each: false })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        ParamError::not_a(format!("one of {}", expected.join(", ")), variant, false)
    }

    fn missing_field(field: &'static str) -> Self {
        ParamError(Problem::Said(format!("`{field}` is required")))
    }
}

fn last(values: &[String]) -> &str {
    values.last().map(String::as_str).unwrap_or_default()
}

/// What a visitor expects, in the words of an error.
fn expecting<'de, V: Visitor<'de>>(visitor: &V) -> String {
    let what = (visitor as &dyn Expected).to_string();
    // The uuid crate's words ("a formatted UUID string") say more than a client needs.
    if what.contains("UUID") {
        "a UUID".to_owned()
    } else {
        what
    }
}

/// The whole query string: a struct reads the parameters named by its fields, in
/// their order; any other parameter is ignored.
pub(super) struct ParamsDe<'a>(pub(super) &'a Params);

impl<'de> Deserializer<'de> for ParamsDe<'_> {
    type Error = ParamError;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_map(Fields { params: self.0, keys: fields.iter().copied(), value: None })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_map(Fields { params: self.0, keys: self.0.keys(), value: None })
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct enum identifier ignored_any
    }
}

/// The parameters a struct asks for, each with its values.
struct Fields<'a, I: Iterator> {
    params: &'a Params,
    keys: I,
    value: Option<(I::Item, &'a [String])>,
}

impl<'de, 'a, I> de::MapAccess<'de> for Fields<'a, I>
where
    I: Iterator,
    I::Item: AsRef<str> + Copy,
{
    type Error = ParamError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ParamError> {
        for key in self.keys.by_ref() {
            if let Some(values) = self.params.get(key.as_ref()) {
                self.value = Some((key, values));
                return seed.deserialize(StrDeserializer::<ParamError>::new(key.as_ref())).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ParamError> {
        let Some((key, values)) = self.value.take() else {
            return Err(ParamError(Problem::Said("a parameter's value was read before its name".into())));
        };
        seed.deserialize(ValueDe(values)).map_err(|e| e.at(key.as_ref(), values))
    }
}

/// Every value of one parameter: a list reads them all, anything else the last.
struct ValueDe<'a>(&'a [String]);

impl<'a> ValueDe<'a> {
    /// The value a scalar reads: the last, but an empty one if any is empty, since
    /// an empty value is never skipped silently (`project_id=&project_id=x` is
    /// refused as `project_id=` is).
    fn scalar(&self) -> Scalar<'a> {
        let empty = self.0.iter().find(|v| v.is_empty());
        Scalar { value: empty.map(String::as_str).unwrap_or_else(|| last(self.0)), each: false }
    }

    /// The pieces of a list, in order.
    fn pieces(&self) -> Vec<&'a str> {
        let mut out = Vec::new();
        for v in self.0 {
            let before = out.len();
            out.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()));
            if out.len() == before {
                // INVARIANT: a value with nothing in it is kept, so that `ids=` is
                // refused by the UUID type rather than read as "no filter".
                out.push("");
            }
        }
        out
    }
}

macro_rules! to_scalar {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
                self.scalar().$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for ValueDe<'_> {
    type Error = ParamError;

    to_scalar!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        match name {
            EMPTY_AS_NONE if last(self.0).is_empty() => visitor.visit_none(),
            // Absent-if-empty reads the last value only, as it always has.
            EMPTY_AS_NONE => visitor.visit_some(ValueDe(&self.0[self.0.len() - 1..])),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let mut seq = SeqDeserializer::new(self.pieces().into_iter().map(|value| Scalar { value, each: true }));
        let out = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(out)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, ParamError> {
        self.scalar().deserialize_unit_struct(name, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.scalar().deserialize_enum(name, variants, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.scalar().deserialize_map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.scalar().deserialize_struct(name, fields, visitor)
    }
}

/// One value: a parameter's last, or one piece of a list (`each`).
struct Scalar<'a> {
    value: &'a str,
    each: bool,
}

impl Scalar<'_> {
    fn not_a(&self, what: &str) -> ParamError {
        ParamError::not_a(what, self.value, self.each)
    }

    /// A visitor's own complaint about the value, reworded as what it expected.
    fn reword(&self, e: ParamError, what: String) -> ParamError {
        match e.0 {
            Problem::Custom(_) => self.not_a(&what),
            Problem::NotA { what, got, each: _ } => {
                ParamError(Problem::NotA { what, got: got.or_else(|| Some(self.value.to_owned())), each: self.each })
            }
            said @ Problem::Said(_) => ParamError(said),
        }
    }
}

macro_rules! parse_as {
    ($($method:ident => $visit:ident($t:ty), $what:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
                let parsed: $t = self.value.parse().map_err(|_| self.not_a($what))?;
                visitor.$visit(parsed)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Scalar<'_> {
    type Error = ParamError;

    parse_as! {
        deserialize_i8 => visit_i8(i8), "a whole number";
        deserialize_i16 => visit_i16(i16), "a whole number";
        deserialize_i32 => visit_i32(i32), "a whole number";
        deserialize_i64 => visit_i64(i64), "a whole number";
        deserialize_i128 => visit_i128(i128), "a whole number";
        deserialize_u8 => visit_u8(u8), "a whole number";
        deserialize_u16 => visit_u16(u16), "a whole number";
        deserialize_u32 => visit_u32(u32), "a whole number";
        deserialize_u64 => visit_u64(u64), "a whole number";
        deserialize_u128 => visit_u128(u128), "a whole number";
        deserialize_f32 => visit_f32(f32), "a number";
        deserialize_f64 => visit_f64(f64), "a number";
        deserialize_char => visit_char(char), "a single character";
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.value {
            "true" | "1" => visitor.visit_bool(true),
            "false" | "0" => visitor.visit_bool(false),
            _ => Err(self.not_a("true or false")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let what = expecting(&visitor);
        visitor.visit_str(self.value).map_err(|e| self.reword(e, what))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let what = expecting(&visitor);
        visitor.visit_string(self.value.to_owned()).map_err(|e| self.reword(e, what))
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let what = expecting(&visitor);
        visitor.visit_bytes(self.value.as_bytes()).map_err(|e| self.reword(e, what))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        match name {
            EMPTY_AS_NONE if self.value.is_empty() => visitor.visit_none(),
            EMPTY_AS_NONE => visitor.visit_some(self),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        let what = expecting(&visitor);
        visitor.visit_enum(StrDeserializer::<ParamError>::new(self.value)).map_err(|e| self.reword(e, what))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ParamError> {
        Err(self.not_a("a single value, not a list of lists"))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ParamError> {
        Err(self.not_a("a single value, not a structure"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_map(visitor)
    }
}

impl<'de, 'a> IntoDeserializer<'de, ParamError> for Scalar<'a> {
    type Deserializer = Scalar<'a>;

    fn into_deserializer(self) -> Scalar<'a> {
        self
    }
}
