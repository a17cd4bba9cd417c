//! The parse tree as the walkers read it: a compact, generic tree built
//! straight from libpg_query's protobuf through its `Serialize` impl.
//!
//! It replaces `serde_json::Value`, which cost about 3 KiB per parse node
//! (an owned `String` per field name, a B-tree node per object): a 400 KB
//! `SELECT 1,1,…` took 1.35 GB and 1.6 s to convert. Here field names are the
//! protobuf's `&'static str`s, objects are vectors of fields, and absent
//! (`None`) fields are left out. The API mirrors the few `Value` methods the
//! walkers use, so they read the same.

use serde::ser::{self, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A parse-tree value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Array(Vec<Tree>),
    /// Fields in declaration order; `None` fields are left out.
    Object(Vec<(Cow<'static, str>, Tree)>),
}

impl Tree {
    /// Converts anything serializable (a protobuf node).
    pub(crate) fn from<T: Serialize + ?Sized>(v: &T) -> Result<Tree, TreeError> {
        v.serialize(TreeSerializer)
    }

    /// An object's field.
    pub(crate) fn get(&self, key: &str) -> Option<&Tree> {
        match self {
            Tree::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Tree::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Tree::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Tree::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&Vec<Tree>> {
        match self {
            Tree::Array(a) => Some(a),
            _ => None,
        }
    }

    /// An object's fields.
    pub(crate) fn as_object(&self) -> Option<&Vec<(Cow<'static, str>, Tree)>> {
        match self {
            Tree::Object(fields) => Some(fields),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Tree::Null)
    }

    /// A value by a `/`-separated path of field names (as `Value::pointer`).
    pub(crate) fn pointer(&self, path: &str) -> Option<&Tree> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(self, |v, key| v.get(key))
    }
}

/// Compact JSON, as `serde_json` would write it (absent fields aside).
impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tree::Null => f.write_str("null"),
            Tree::Bool(b) => write!(f, "{b}"),
            Tree::Int(i) => write!(f, "{i}"),
            Tree::Float(x) => write!(f, "{x}"),
            Tree::String(s) => write!(f, "{s:?}"),
            Tree::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Tree::Object(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k:?}:{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// The parse tree could not be converted (a shape the tree has no form for).
#[derive(Debug)]
pub(crate) struct TreeError(String);

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TreeError {}

impl ser::Error for TreeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TreeError(msg.to_string())
    }
}

struct TreeSerializer;

/// Collects a sequence (also a tuple and a tuple variant's fields).
struct SeqBuilder {
    variant: Option<&'static str>,
    items: Vec<Tree>,
}

/// Collects a struct's (or a map's) fields.
struct ObjectBuilder {
    variant: Option<&'static str>,
    fields: Vec<(Cow<'static, str>, Tree)>,
    next_key: Option<String>,
}

fn tagged(variant: Option<&'static str>, value: Tree) -> Tree {
    match variant {
        Some(v) => Tree::Object(vec![(Cow::Borrowed(v), value)]),
        None => value,
    }
}

impl ser::Serializer for TreeSerializer {
    type Ok = Tree;
    type Error = TreeError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = ObjectBuilder;
    type SerializeStruct = ObjectBuilder;
    type SerializeStructVariant = ObjectBuilder;

    fn serialize_bool(self, v: bool) -> Result<Tree, TreeError> {
        Ok(Tree::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Tree, TreeError> {
        Ok(Tree::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Tree, TreeError> {
        Ok(Tree::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Tree, TreeError> {
        Ok(Tree::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Tree, TreeError> {
        Ok(Tree::Int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Tree, TreeError> {
        Ok(Tree::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Tree, TreeError> {
        Ok(Tree::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Tree, TreeError> {
        Ok(Tree::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Tree, TreeError> {
        Ok(Tree::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn serialize_f32(self, v: f32) -> Result<Tree, TreeError> {
        Ok(Tree::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Tree, TreeError> {
        Ok(Tree::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Tree, TreeError> {
        Ok(Tree::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Tree, TreeError> {
        Ok(Tree::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Tree, TreeError> {
        Ok(Tree::Array(
            v.iter().map(|b| Tree::Int((*b).into())).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Tree, TreeError> {
        Ok(Tree::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Tree, TreeError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Tree, TreeError> {
        Ok(Tree::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Tree, TreeError> {
        Ok(Tree::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Tree, TreeError> {
        Ok(Tree::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Tree, TreeError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Tree, TreeError> {
        Ok(tagged(Some(variant), v.serialize(TreeSerializer)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, TreeError> {
        Ok(SeqBuilder {
            variant: None,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, TreeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder, TreeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, TreeError> {
        Ok(SeqBuilder {
            variant: Some(variant),
            items: Vec::with_capacity(len),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<ObjectBuilder, TreeError> {
        Ok(ObjectBuilder {
            variant: None,
            fields: Vec::with_capacity(len.unwrap_or(0)),
            next_key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<ObjectBuilder, TreeError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<ObjectBuilder, TreeError> {
        Ok(ObjectBuilder {
            variant: Some(variant),
            fields: Vec::with_capacity(len),
            next_key: None,
        })
    }
}

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TreeError> {
        self.items.push(v.serialize(TreeSerializer)?);
        Ok(())
    }
    fn done(self) -> Tree {
        tagged(self.variant, Tree::Array(self.items))
    }
}

/// The four sequence-like traits: each pushes an element and ends the same way.
macro_rules! seq_builder {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqBuilder {
            type Ok = Tree;
            type Error = TreeError;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TreeError> {
                self.push(v)
            }
            fn end(self) -> Result<Tree, TreeError> {
                Ok(self.done())
            }
        }
    )*};
}

seq_builder!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ObjectBuilder {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        v: &T,
    ) -> Result<(), TreeError> {
        let v = v.serialize(TreeSerializer)?;
        // Absent fields are left out: the walkers treat missing and null alike.
        if !v.is_null() {
            self.fields.push((key, v));
        }
        Ok(())
    }
    fn done(self) -> Tree {
        tagged(self.variant, Tree::Object(self.fields))
    }
}

/// A struct's and a struct variant's fields are named by the protobuf.
macro_rules! struct_builder {
    ($($trait:ident),*) => {$(
        impl ser::$trait for ObjectBuilder {
            type Ok = Tree;
            type Error = TreeError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), TreeError> {
                self.field(Cow::Borrowed(key), v)
            }
            fn end(self) -> Result<Tree, TreeError> {
                Ok(self.done())
            }
        }
    )*};
}

struct_builder!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for ObjectBuilder {
    type Ok = Tree;
    type Error = TreeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), TreeError> {
        match key.serialize(TreeSerializer)? {
            Tree::String(s) => {
                self.next_key = Some(s);
                Ok(())
            }
            other => Err(TreeError(format!(
                "a map key that is not a string: {other}"
            ))),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TreeError> {
        let key = self.next_key.take().unwrap_or_default();
        self.field(Cow::Owned(key), v)
    }
    fn end(self) -> Result<Tree, TreeError> {
        Ok(self.done())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree holds what `serde_json` holds, less the null fields.
    #[test]
    fn a_parse_tree_converts_as_serde_json_does() {
        for sql in [
            "SELECT a.b, count(*) FROM s.t a JOIN u USING (id) WHERE x = $1 AND y IS NULL",
            "EXPLAIN (ANALYZE false) DELETE FROM t WHERE 0.5 > 1e3",
            "COPY t (a, b) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER ';')",
            "SET search_path = a, 'b'; RESET ALL",
        ] {
            let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).unwrap();
            for raw in &parsed.protobuf.stmts {
                let node = raw.stmt.as_ref().unwrap();
                let tree = Tree::from(node).unwrap();
                let mut json = serde_json::to_value(node).unwrap();
                strip_nulls(&mut json);
                let from_tree: serde_json::Value = serde_json::from_str(&tree.to_string()).unwrap();
                assert_eq!(from_tree, json, "{sql}");
            }
        }
    }

    fn strip_nulls(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|_, v| !v.is_null());
                m.values_mut().for_each(strip_nulls);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
            _ => {}
        }
    }
}
