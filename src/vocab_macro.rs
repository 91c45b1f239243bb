//! One declaration per vocabulary: [`vocabulary!`] declares a fieldless enum whose variants
//! each carry the name the reports and JSON write, and makes from that one list the enum,
//! `ALL` (every value in declaration order), `name()`, `from_name()`, and serialization and
//! deserialization by name. A variant added to the declaration is in `ALL` and has a name:
//! neither can be forgotten or put out of order.

/// Declares a vocabulary enum (see the module). The variants are written `Variant = "name",`,
/// each with its doc comment; the enum's own attributes (doc, derives) are kept. The enum is
/// serialized as its name (serde's unit variant, which JSON writes as the string) and read back
/// from it, an unknown name being an error that lists the known ones.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Enum:ident {
            $(
                $(#[doc = $vdoc:literal])*
                $Variant:ident = $name:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $Enum {
            $(
                $(#[doc = $vdoc])*
                $Variant,
            )+
        }

        impl $Enum {
            /// Every value, in declaration order.
            pub const ALL: [$Enum; [$($name),+].len()] = [$($Enum::$Variant),+];

            /// Every name, in declaration order.
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];

            /// The name the reports and JSON write.
            pub fn name(self) -> &'static str {
                match self {
                    $($Enum::$Variant => $name,)+
                }
            }

            /// The value named `name` (as [`Self::name`] writes it).
            pub fn from_name(name: &str) -> Option<$Enum> {
                match name {
                    $($name => Some($Enum::$Variant),)+
                    _ => None,
                }
            }
        }

        impl ::serde::Serialize for $Enum {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_unit_variant(stringify!($Enum), *self as u32, self.name())
            }
        }

        impl ::schemars::JsonSchema for $Enum {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($Enum).into()
            }

            /// A string, one of the names, each with its variant's doc comment as description.
            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                let one_of: Vec<::serde_json::Value> = [$(($name, concat!($($vdoc, "\n",)* ""))),+]
                    .iter()
                    .map(|(name, doc)| {
                        ::serde_json::json!({
                            "const": name,
                            "description": $crate::vocab_macro::doc_text(doc),
                        })
                    })
                    .collect();
                ::schemars::json_schema!({ "type": "string", "oneOf": one_of })
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $Enum {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Name;
                impl ::serde::de::Visitor<'_> for Name {
                    type Value = $Enum;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter) -> ::std::fmt::Result {
                        f.write_str(concat!("a name of ", stringify!($Enum)))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$Enum, E> {
                        $Enum::from_name(v)
                            .ok_or_else(|| E::unknown_variant(v, &$Enum::NAMES))
                    }
                }
                d.deserialize_str(Name)
            }
        }
    };
}

pub(crate) use vocabulary;

/// A doc comment's text as one paragraph: the lines `///` gave (each with its leading space)
/// joined by single spaces.
pub fn doc_text(doc: &str) -> String {
    doc.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    vocabulary! {
        /// A test vocabulary.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Fruit {
            /// The first.
            Apple = "apple",
            BloodOrange = "blood-orange",
        }
    }

    #[test]
    fn one_declaration_gives_all_names_and_json() {
        assert_eq!(Fruit::ALL, [Fruit::Apple, Fruit::BloodOrange]);
        assert_eq!(Fruit::NAMES, ["apple", "blood-orange"]);
        assert_eq!(Fruit::BloodOrange.name(), "blood-orange");
        assert_eq!(Fruit::from_name("apple"), Some(Fruit::Apple));
        assert_eq!(Fruit::from_name("Apple"), None);
        assert_eq!(
            serde_json::to_string(&Fruit::BloodOrange).unwrap(),
            "\"blood-orange\""
        );
        let back: Vec<Fruit> = serde_json::from_str("[\"apple\",\"blood-orange\"]").unwrap();
        assert_eq!(back, Fruit::ALL);
        let e = serde_json::from_str::<Fruit>("\"pear\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown variant `pear`, expected `apple` or `blood-orange`"),
            "{e}"
        );
        assert!(serde_json::from_str::<Fruit>("3").is_err());
    }
}
