//! Serde through the string form: `Display` to serialize, `FromStr` to
//! deserialize.

/// Implements `Serialize`/`Deserialize` for a type through its `Display` and
/// `FromStr` impls.
macro_rules! serde_via_str {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s =
                    <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_via_str;

/// `Option<Utf8UnixPathBuf>` as an optional string.
pub(crate) mod opt_unix_path {
    use serde::{Deserialize, Deserializer, Serializer};
    use typed_path::Utf8UnixPathBuf;

    pub(crate) fn serialize<S: Serializer>(
        path: &Option<Utf8UnixPathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match path {
            Some(p) => serializer.serialize_some(p.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Utf8UnixPathBuf>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map(Utf8UnixPathBuf::from))
    }
}
