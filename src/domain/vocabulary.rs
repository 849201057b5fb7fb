//! The closed sets of names Tessera speaks in (grant types, key states, revocation
//! kinds). Each is an enum whose text, the same in SQL, JSON, Redis keys and metrics
//! labels, is written once, in the `vocabulary!` invocation that declares it.

/// Declares a closed set of names: the enum, `ALL`, `as_str`, an exact `parse`, a
/// `Display` and a `Serialize` that write the text, a `Deserialize` through the type's
/// `FromStr`, and the conversions a store row's
/// text column goes through (`From<Self> for String`, `TryFrom<String>`).
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every member, in the order the documentation lists them.
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];

            /// The name, as stored and sent.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// The member with exactly this name.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// The names joined by `separator`, the last two by `last`: for messages
            /// such as "use a, b or c".
            pub fn names(separator: &str, last: &str) -> String {
                let mut out = String::new();
                for (i, member) in Self::ALL.iter().enumerate() {
                    if i > 0 {
                        out.push_str(if i + 1 == Self::ALL.len() { last } else { separator });
                    }
                    out.push_str(member.as_str());
                }
                out
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse::<Self>().map_err(serde::de::Error::custom)
            }
        }

        impl From<$name> for String {
            fn from(member: $name) -> Self {
                member.as_str().to_owned()
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                text.parse::<Self>().map_err(|e| e.to_string())
            }
        }
    };
}

/// The OpenAPI schema of a vocabulary: a string that is one of its names.
macro_rules! string_enum_schema {
    ($name:ident, $description:literal) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($description))
                    .enum_values(Some($name::ALL.map($name::as_str)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

pub(crate) use string_enum_schema;
pub(crate) use vocabulary;
