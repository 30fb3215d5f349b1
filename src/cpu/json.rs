//! A small JSON reader and string escaper for [`CpuPolicy`](super::CpuPolicy)'s files.
//!
//! The library builds without serde (it is an optional dependency of the `cli` feature),
//! and a policy file is a flat object of strings, numbers and string arrays: a reader of
//! about a hundred lines keeps the format independent of any serializer's conventions
//! and gives errors with a line and column.

use std::fmt::Write as _;

/// A JSON value; an object keeps its members in order, each with its key's position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    /// The number as written (validated as JSON's number syntax).
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value, (u32, u32))>),
}

/// A syntax error: what, and the 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

/// Nesting deeper than this is refused (a policy file has depth 2).
const MAX_DEPTH: usize = 32;

pub(crate) fn parse(text: &str) -> Result<Value, SyntaxError> {
    let mut p = Parser { chars: text.char_indices().collect(), i: 0, text };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.i < p.chars.len() {
        return Err(p.error("unexpected text after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    chars: Vec<(usize, char)>,
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|&(_, c)| c)
    }

    fn position(&self) -> (u32, u32) {
        let offset = self.chars.get(self.i).map_or(self.text.len(), |&(o, _)| o);
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
    }

    fn error(&self, message: &str) -> SyntaxError {
        let (line, column) = self.position();
        let found = match self.peek() {
            Some(c) => format!("{message} (found {c:?})"),
            None => format!("{message} (found the end of the text)"),
        };
        SyntaxError { message: found, line, column }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, SyntaxError> {
        for expected in word.chars() {
            if !self.eat(expected) {
                return Err(self.error(&format!("expected {word}")));
            }
        }
        Ok(v)
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            Some('{') => self.object(depth),
            Some('[') => self.array(depth),
            Some('"') => Ok(Value::String(self.string()?)),
            Some('t') => self.literal("true", Value::Bool(true)),
            Some('f') => self.literal("false", Value::Bool(false)),
            Some('n') => self.literal("null", Value::Null),
            Some('-' | '0'..='9') => self.number(),
            _ => Err(self.error("expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.i += 1;
        let mut members = Vec::new();
        self.skip_ws();
        if self.eat('}') {
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            let at = self.position();
            if self.peek() != Some('"') {
                return Err(self.error("expected a member name in double quotes"));
            }
            let key = self.string()?;
            self.skip_ws();
            if !self.eat(':') {
                return Err(self.error("expected ':' after the member name"));
            }
            self.skip_ws();
            let v = self.value(depth + 1)?;
            members.push((key, v, at));
            self.skip_ws();
            if self.eat('}') {
                return Ok(Value::Object(members));
            }
            if !self.eat(',') {
                return Err(self.error("expected ',' or '}' in an object"));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(']') {
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            if self.eat(']') {
                return Ok(Value::Array(items));
            }
            if !self.eat(',') {
                return Err(self.error("expected ',' or ']' in an array"));
            }
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some('"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.i += 1;
                    let c = match self.peek() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('/') => '/',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('u') => {
                            self.i += 1;
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if !(self.eat('\\') && self.eat('u')) {
                                    return Err(self.error("expected the low half of a surrogate pair"));
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.error("invalid low surrogate"));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))?);
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    out.push(c);
                    self.i += 1;
                }
                Some(c) if (c as u32) < 0x20 => return Err(self.error("control character in a string")),
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self.peek().and_then(|c| c.to_digit(16)).ok_or_else(|| self.error("expected 4 hex digits"))?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.i;
        self.eat('-');
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some('0'..='9')) {
                p.i += 1;
            }
            p.i > from
        };
        if self.peek() == Some('0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(self.error("expected digits"));
        }
        if self.eat('.') && !digits(self) {
            return Err(self.error("expected digits after '.'"));
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.i += 1;
            if !self.eat('+') {
                self.eat('-');
            }
            if !digits(self) {
                return Err(self.error("expected exponent digits"));
            }
        }
        Ok(Value::Number(self.chars[start..self.i].iter().map(|&(_, c)| c).collect()))
    }
}

/// `s` as a JSON string literal, quotes included.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_positions() {
        let v = parse(r#" { "a": [1, -2.5e3, "x\u00e9\n"], "b": {"c": null, "d": true} } "#).unwrap();
        let Value::Object(m) = v else { panic!() };
        assert_eq!(m[0].0, "a");
        assert_eq!(
            m[0].1,
            Value::Array(vec![Value::Number("1".into()), Value::Number("-2.5e3".into()), Value::String("xé\n".into())])
        );
        let e = parse("{\n  \"a\": tru }").unwrap_err();
        assert_eq!((e.line, e.column), (2, 11));
        assert!(parse("[1,]").is_err());
        assert!(parse("01").is_err());
        assert!(parse("\"\\ud83d\\ude00\"").is_ok());
        assert!(parse(&"[".repeat(100)).is_err());
        assert_eq!(quote("a\"b\\\u{1}"), "\"a\\\"b\\\\\\u0001\"");
    }
}
