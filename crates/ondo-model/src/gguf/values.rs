//! GGUF metadata values: scalars, strings and (nested) arrays decoded into typed vectors,
//! with accessors that accept any integer type a value fits.

use std::borrow::Cow;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// An array value, decoded into a vector of its element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    /// Any integer value that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(x) => Some(x.into()),
            Value::U16(x) => Some(x.into()),
            Value::U32(x) => Some(x.into()),
            Value::U64(x) => Some(x),
            Value::I8(x) => u64::try_from(x).ok(),
            Value::I16(x) => u64::try_from(x).ok(),
            Value::I32(x) => u64::try_from(x).ok(),
            Value::I64(x) => u64::try_from(x).ok(),
            _ => None,
        }
    }

    /// Any integer value that fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(x) => Some(x.into()),
            Value::I16(x) => Some(x.into()),
            Value::I32(x) => Some(x.into()),
            Value::I64(x) => Some(x),
            _ => self.as_u64().and_then(|x| i64::try_from(x).ok()),
        }
    }

    /// An f32 or f64 value.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(x) => Some(x.into()),
            Value::F64(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The type as a phrase for messages: "u32", "string", "array of 3 f32".
    pub fn type_name(&self) -> String {
        let scalar = match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
            Value::Array(a) => return a.type_name(),
        };
        scalar.to_string()
    }
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            Array::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_arrays(&self) -> Option<&[Array]> {
        match self {
            Array::Array(v) => Some(v),
            _ => None,
        }
    }

    /// The values as i32 when every one fits (borrowed when stored as i32).
    pub fn to_i32s(&self) -> Option<Cow<'_, [i32]>> {
        match self {
            Array::I32(v) => Some(Cow::Borrowed(v)),
            _ => self.convert_ints(|x| i32::try_from(x).ok()).map(Cow::Owned),
        }
    }

    /// The values as u32 when every one fits (borrowed when stored as u32).
    pub fn to_u32s(&self) -> Option<Cow<'_, [u32]>> {
        match self {
            Array::U32(v) => Some(Cow::Borrowed(v)),
            _ => self.convert_ints(|x| u32::try_from(x).ok()).map(Cow::Owned),
        }
    }

    /// Map every integer element (widened to i128) through `f`; None for non-integer arrays or
    /// when any element does not convert.
    fn convert_ints<T>(&self, f: impl Fn(i128) -> Option<T>) -> Option<Vec<T>> {
        fn all<S: Copy + Into<i128>, T>(v: &[S], f: impl Fn(i128) -> Option<T>) -> Option<Vec<T>> {
            v.iter().map(|&x| f(x.into())).collect()
        }
        match self {
            Array::U8(v) => all(v, f),
            Array::I8(v) => all(v, f),
            Array::U16(v) => all(v, f),
            Array::I16(v) => all(v, f),
            Array::U32(v) => all(v, f),
            Array::I32(v) => all(v, f),
            Array::U64(v) => all(v, f),
            Array::I64(v) => all(v, f),
            _ => None,
        }
    }

    /// "array of 3 f32", "array of 2 array".
    pub fn type_name(&self) -> String {
        let elem = match self {
            Array::U8(_) => "u8",
            Array::I8(_) => "i8",
            Array::U16(_) => "u16",
            Array::I16(_) => "i16",
            Array::U32(_) => "u32",
            Array::I32(_) => "i32",
            Array::F32(_) => "f32",
            Array::Bool(_) => "bool",
            Array::String(_) => "string",
            Array::Array(_) => "array",
            Array::U64(_) => "u64",
            Array::I64(_) => "i64",
            Array::F64(_) => "f64",
        };
        format!("array of {} {elem}", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_accessors_accept_any_type_that_fits() {
        assert_eq!(Value::U8(7).as_u64(), Some(7));
        assert_eq!(Value::I32(-1).as_u64(), None);
        assert_eq!(Value::I32(-1).as_i64(), Some(-1));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::F32(1.0).as_u64(), None);
        assert_eq!(Value::String("x".into()).as_f64(), None);
    }

    #[test]
    fn int_arrays_convert_when_every_value_fits() {
        let a = Array::U8(vec![1, 2, 255]);
        assert_eq!(a.to_i32s().as_deref(), Some(&[1, 2, 255][..]));
        assert_eq!(Array::I64(vec![1, -1]).to_u32s(), None);
        assert_eq!(Array::F32(vec![1.0]).to_i32s(), None);
        assert!(matches!(Array::I32(vec![3]).to_i32s(), Some(Cow::Borrowed(_))));
    }
}
