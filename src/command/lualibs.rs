//! The libraries Redis bundles into its Lua: `bit` (LuaBitOp), `cjson` (lua-cjson),
//! `struct` (Roberto Ierusalimschy's struct) and `cmsgpack` (lua-cmsgpack), written here with
//! their behaviour and error texts as Redis 7.0 ships them: numbers as int32 in `bit`, `%.14g`
//! numbers and `\/` in cjson's output, cjson's parse errors with the character they are at,
//! msgpack's smallest encodings.

use mlua::{LightUserData, Lua, MultiValue, Table, Value, Variadic};

use super::scripting::at_line;

/// Installs the four libraries as globals of `g`.
pub fn install(lua: &Lua, g: &Table) -> mlua::Result<()> {
    g.raw_set("bit", bit(lua)?)?;
    g.raw_set("cjson", cjson(lua)?)?;
    g.raw_set("struct", structlib(lua)?)?;
    g.raw_set("cmsgpack", cmsgpack(lua)?)?;
    Ok(())
}

/// An error raised at the script's current line, as luaL_error raises it.
fn fail<T>(lua: &Lua, message: &str) -> mlua::Result<T> {
    Err(mlua::Error::runtime(at_line(lua, message)))
}

/// Lua's own name for a value's type (what `type()` says).
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        _ => "userdata",
    }
}

/// A number argument as luaL_checknumber takes it (numeric strings too).
fn number_arg(lua: &Lua, args: &MultiValue, i: usize, func: &str) -> mlua::Result<f64> {
    number_arg_or(lua, args, i, func, "no value")
}

/// [`number_arg`], naming a missing argument `missing` (struct says "nil").
fn number_arg_or(lua: &Lua, args: &MultiValue, i: usize, func: &str, missing: &str) -> mlua::Result<f64> {
    let v = args.get(i).unwrap_or(&Value::Nil);
    let n = match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => s.to_str().ok().and_then(|t| parse_lua_number(t.trim())),
        _ => None,
    };
    match n {
        Some(n) => Ok(n),
        None => {
            let got = if i >= args.len() { missing } else { type_name(v) };
            fail(lua, &format!("bad argument #{} to '{func}' (number expected, got {got})", i + 1))
        }
    }
}

/// A string argument as luaL_checklstring takes it (numbers become their text).
fn string_arg(lua: &Lua, args: &MultiValue, i: usize, func: &str) -> mlua::Result<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(crate::keyspace::zset::g_fmt(*n, 14).into_bytes()),
        other => fail(
            lua,
            &format!(
                "bad argument #{} to '{func}' (string expected, got {})",
                i + 1,
                other.map_or("no value", type_name)
            ),
        ),
    }
}

/// A string Lua would read as a number (decimal or 0x hex).
fn parse_lua_number(t: &str) -> Option<f64> {
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    t.parse::<f64>()
        .ok()
        .filter(|_| !t.is_empty() && !t.eq_ignore_ascii_case("inf") && !t.eq_ignore_ascii_case("nan"))
}

// ---------------------------------------------------------------------------------------------
// bit: LuaBitOp 1.0.2. Every number is taken modulo 2^32 (rounding as the FPU does) and every
// result is a signed 32-bit number.

fn tobit(n: f64) -> i32 {
    // LuaBitOp's trick: adding 2^52 + 2^51 leaves the number's low 32 bits in the mantissa.
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|lua, a: MultiValue| Ok(tobit(number_arg(lua, &a, 0, "tobit")?)))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|lua, a: MultiValue| Ok(!tobit(number_arg(lua, &a, 0, "bnot")?)))?,
    )?;
    t.raw_set(
        "bswap",
        lua.create_function(|lua, a: MultiValue| Ok(tobit(number_arg(lua, &a, 0, "bswap")?).swap_bytes()))?,
    )?;
    for (name, op) in [
        ("band", (|a: i32, b: i32| a & b) as fn(i32, i32) -> i32),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ] {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let mut acc = tobit(number_arg(lua, &a, 0, name)?);
                for i in 1..a.len() {
                    acc = op(acc, tobit(number_arg(lua, &a, i, name)?));
                }
                Ok(acc)
            })?,
        )?;
    }
    for (name, op) in [
        ("lshift", (|x: i32, n: u32| ((x as u32) << n) as i32) as fn(i32, u32) -> i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ] {
        t.raw_set(
            name,
            lua.create_function(move |lua, a: MultiValue| {
                let x = tobit(number_arg(lua, &a, 0, name)?);
                let n = tobit(number_arg(lua, &a, 1, name)?) as u32 & 31;
                Ok(op(x, n))
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|lua, a: MultiValue| {
            let x = tobit(number_arg(lua, &a, 0, "tohex")?) as u32;
            let mut n = if matches!(a.get(1), None | Some(Value::Nil)) {
                8
            } else {
                tobit(number_arg(lua, &a, 1, "tohex")?)
            };
            let upper = n < 0;
            if upper {
                n = -n;
            }
            let n = n.min(8) as usize;
            let full = if upper { format!("{x:08X}") } else { format!("{x:08x}") };
            Ok(full[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// cjson: lua-cjson 2.1.0 with its defaults (numbers as %.14g, sparse arrays refused past a
// ratio of 2 and 10 elements, 1000 levels of nesting either way).

const JSON_MAX_DEPTH: usize = 1000;

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, a: MultiValue| {
            if a.len() != 1 {
                return fail(lua, "bad argument #1 to 'encode' (expected 1 argument)");
            }
            let mut out = Vec::new();
            json_encode(lua, &a[0], 0, &mut out)?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, a: MultiValue| {
            if a.len() != 1 {
                return fail(lua, "bad argument #1 to 'decode' (expected 1 argument)");
            }
            let text = string_arg(lua, &a, 0, "decode")?;
            let mut p = JsonParser { lua, s: &text, pos: 0, depth: 0 };
            let v = p.value()?;
            p.skip_ws();
            if p.pos < p.s.len() {
                return p.error("the end", "invalid token", p.pos);
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    // The settings: accepted, the defaults kept (what scripts read back).
    for (name, value) in [
        (
            "encode_sparse_array",
            MultiValue::from_iter([Value::Boolean(false), Value::Integer(2), Value::Integer(10)]),
        ),
        ("encode_max_depth", MultiValue::from_iter([Value::Integer(1000)])),
        ("decode_max_depth", MultiValue::from_iter([Value::Integer(1000)])),
        ("encode_number_precision", MultiValue::from_iter([Value::Integer(14)])),
        ("encode_keep_buffer", MultiValue::from_iter([Value::Boolean(true)])),
        ("encode_invalid_numbers", MultiValue::from_iter([Value::Boolean(false)])),
        ("decode_invalid_numbers", MultiValue::from_iter([Value::Boolean(true)])),
    ] {
        t.raw_set(name, lua.create_function(move |_, _: MultiValue| Ok(value.clone()))?)?;
    }
    Ok(t)
}

fn json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn json_number(lua: &Lua, n: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !n.is_finite() {
        return fail(lua, "Cannot serialise number: must not be NaN or Inf");
    }
    out.extend_from_slice(crate::keyspace::zset::g_fmt(n, 14).as_bytes());
    Ok(())
}

/// A table's keys as both encoders judge them: how many, the largest, and whether every key
/// is a positive integer (then it may be an array).
fn array_shape(t: &Table) -> mlua::Result<(usize, f64, bool)> {
    let (mut items, mut max, mut array) = (0usize, 0f64, true);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        items += 1;
        let key = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => f64::NAN,
        };
        if key.is_nan() || key < 1.0 || key.fract() != 0.0 {
            array = false;
        } else {
            max = max.max(key);
        }
    }
    Ok((items, max, array))
}

fn json_encode(lua: &Lua, v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => json_number(lua, *n as f64, out)?,
        Value::Number(n) => json_number(lua, *n, out)?,
        Value::String(s) => json_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > JSON_MAX_DEPTH {
                return fail(lua, &format!("Cannot serialise, excessive nesting ({depth})"));
            }
            // An array when every key is a positive integer (not too sparse), else an object.
            let (items, max, array) = array_shape(t)?;
            if array && items > 0 && max > (items * 2) as f64 && max > 10.0 {
                return fail(lua, "Cannot serialise table: excessively sparse array");
            }
            if array && items > 0 {
                out.push(b'[');
                for i in 1..=max as i64 {
                    if i > 1 {
                        out.push(b',');
                    }
                    json_encode(lua, &t.raw_get::<Value>(i)?, depth, out)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, item) = pair?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => json_string(&s.as_bytes(), out),
                        Value::Integer(n) => {
                            json_string(crate::keyspace::zset::g_fmt(*n as f64, 14).as_bytes(), out)
                        }
                        Value::Number(n) => json_string(crate::keyspace::zset::g_fmt(*n, 14).as_bytes(), out),
                        other => {
                            return fail(
                                lua,
                                &format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    type_name(other)
                                ),
                            )
                        }
                    }
                    out.push(b':');
                    json_encode(lua, &item, depth, out)?;
                }
                out.push(b'}');
            }
        }
        other => return fail(lua, &format!("Cannot serialise {}: type not supported", type_name(other))),
    }
    Ok(())
}

struct JsonParser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

/// What the parser found where it expected something else, in cjson's words.
enum Found {
    Token(&'static str),
    Error(&'static str),
}

impl JsonParser<'_> {
    fn error<T>(&self, expected: &str, found: &str, at: usize) -> mlua::Result<T> {
        fail(self.lua, &format!("Expected {expected} but found {found} at character {}", at + 1))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    /// The kind of the next token (without taking it), as cjson names it.
    fn peek(&mut self) -> Found {
        self.skip_ws();
        match self.s.get(self.pos) {
            None => Found::Token("T_END"),
            Some(b'{') => Found::Token("T_OBJ_BEGIN"),
            Some(b'}') => Found::Token("T_OBJ_END"),
            Some(b'[') => Found::Token("T_ARR_BEGIN"),
            Some(b']') => Found::Token("T_ARR_END"),
            Some(b':') => Found::Token("T_COLON"),
            Some(b',') => Found::Token("T_COMMA"),
            Some(b'"') => Found::Token("T_STRING"),
            Some(b'-' | b'0'..=b'9') => Found::Token("T_NUMBER"),
            Some(_)
                if self.s[self.pos..].starts_with(b"true") || self.s[self.pos..].starts_with(b"false") =>
            {
                Found::Token("T_BOOLEAN")
            }
            Some(_) if self.s[self.pos..].starts_with(b"null") => Found::Token("T_NULL"),
            Some(_) => Found::Error("invalid token"),
        }
    }

    fn expect<T>(&mut self, expected: &str) -> mlua::Result<T> {
        let at = self.pos;
        let found = match self.peek() {
            Found::Token(t) | Found::Error(t) => t,
        };
        self.error(expected, found, at.max(self.pos))
    }

    fn value(&mut self) -> mlua::Result<Value> {
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Found::Token("T_OBJ_BEGIN") => self.object(),
            Found::Token("T_ARR_BEGIN") => self.array(),
            Found::Token("T_STRING") => Ok(Value::String(self.lua.create_string(self.string()?)?)),
            Found::Token("T_NUMBER") => self.number(),
            Found::Token("T_BOOLEAN") => {
                let t = self.s[self.pos] == b't';
                self.pos += if t { 4 } else { 5 };
                Ok(Value::Boolean(t))
            }
            Found::Token("T_NULL") => {
                self.pos += 4;
                Ok(null())
            }
            Found::Token(t) => self.error("value", t, at),
            Found::Error(e) => self.error("value", e, at),
        }
    }

    fn nest(&mut self) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > JSON_MAX_DEPTH {
            return fail(
                self.lua,
                &format!(
                    "Found too many nested data structures ({}) at character {}",
                    self.depth,
                    self.pos + 1
                ),
            );
        }
        Ok(())
    }

    fn array(&mut self) -> mlua::Result<Value> {
        self.nest()?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        if matches!(self.peek(), Found::Token("T_ARR_END")) {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        for i in 1.. {
            let v = self.value()?;
            t.raw_set(i, v)?;
            match self.peek() {
                Found::Token("T_COMMA") => self.pos += 1,
                Found::Token("T_ARR_END") => {
                    self.pos += 1;
                    break;
                }
                _ => return self.expect("comma or array end"),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn object(&mut self) -> mlua::Result<Value> {
        self.nest()?;
        self.pos += 1;
        let t = self.lua.create_table()?;
        if matches!(self.peek(), Found::Token("T_OBJ_END")) {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            if !matches!(self.peek(), Found::Token("T_STRING")) {
                return self.expect("object key string");
            }
            let key = self.string()?;
            if !matches!(self.peek(), Found::Token("T_COLON")) {
                return self.expect("colon");
            }
            self.pos += 1;
            let v = self.value()?;
            t.raw_set(self.lua.create_string(&key)?, v)?;
            match self.peek() {
                Found::Token("T_COMMA") => self.pos += 1,
                Found::Token("T_OBJ_END") => {
                    self.pos += 1;
                    break;
                }
                _ => return self.expect("comma or object end"),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn string(&mut self) -> mlua::Result<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.pos) else {
                return self.error("value", "unexpected end of string", self.pos);
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let escape = self.pos - 1;
                    let Some(&e) = self.s.get(self.pos) else {
                        return self.error("value", "unexpected end of string", self.pos);
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(mut cp) = self.hex4() else {
                                return self.error("value", "invalid unicode escape code", escape);
                            };
                            if (0xD800..0xDC00).contains(&cp) {
                                // A surrogate pair: the low half must follow.
                                if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return self.error("value", "invalid unicode escape code", escape);
                                }
                                self.pos += 2;
                                match self.hex4() {
                                    Some(low) if (0xDC00..0xE000).contains(&low) => {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                                    }
                                    _ => return self.error("value", "invalid unicode escape code", escape),
                                }
                            } else if (0xDC00..0xE000).contains(&cp) {
                                return self.error("value", "invalid unicode escape code", escape);
                            }
                            let c = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return self.error("value", "invalid escape code", escape),
                    }
                }
                _ => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.pos..self.pos + 4)?;
        let cp = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        self.pos += 4;
        Some(cp)
    }

    fn number(&mut self) -> mlua::Result<Value> {
        let start = self.pos;
        let mut end = start;
        if self.s.get(end) == Some(&b'-') {
            end += 1;
        }
        while end < self.s.len() && matches!(self.s[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
            end += 1;
        }
        // strtod takes the longest prefix that is a number.
        let text = std::str::from_utf8(&self.s[start..end]).unwrap_or("");
        let mut len = text.len();
        while len > 0 {
            if let Ok(n) = text[..len].parse::<f64>() {
                self.pos = start + len;
                return Ok(Value::Number(n));
            }
            len -= 1;
        }
        self.error("value", "invalid number", start)
    }
}

// ---------------------------------------------------------------------------------------------
// struct: pack, unpack and size over a format of options, as the struct library Redis bundles.

/// One parsed format option.
struct FormatReader<'a> {
    fmt: &'a [u8],
    pos: usize,
    little: bool,
    align: usize,
}

const MAX_INT_SIZE: usize = 32;
const NATIVE_ALIGN: usize = 8;

impl FormatReader<'_> {
    fn number(&mut self, default: usize) -> usize {
        if !self.fmt.get(self.pos).is_some_and(|b| b.is_ascii_digit()) {
            return default;
        }
        let mut n = 0usize;
        while let Some(d) = self.fmt.get(self.pos).filter(|b| b.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add((d - b'0') as usize);
            self.pos += 1;
        }
        n
    }

    /// The next option and its size; None at the end. Endianness and alignment options are
    /// applied here and give size 0.
    fn next(&mut self, lua: &Lua) -> mlua::Result<Option<(u8, usize)>> {
        let Some(&opt) = self.fmt.get(self.pos) else { return Ok(None) };
        self.pos += 1;
        let size = match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' => 8,
            b'f' => 4,
            b'd' => 8,
            b'c' => self.number(1),
            b'i' | b'I' => {
                let n = self.number(4);
                if n > MAX_INT_SIZE {
                    return fail(lua, &format!("integral size {n} is larger than limit of {MAX_INT_SIZE}"));
                }
                n
            }
            b's' | b' ' => 0,
            b'<' => {
                self.little = true;
                0
            }
            b'>' => {
                self.little = false;
                0
            }
            b'=' => {
                self.little = cfg!(target_endian = "little");
                0
            }
            b'!' => {
                let a = self.number(NATIVE_ALIGN);
                if !a.is_power_of_two() {
                    return fail(
                        lua,
                        &format!("bad argument #1 to 'pack' (alignment {a} is not a power of 2)"),
                    );
                }
                self.align = a;
                0
            }
            other => {
                return fail(
                    lua,
                    &format!("bad argument #1 to 'pack' (invalid format option '{}')", other as char),
                )
            }
        };
        Ok(Some((opt, size)))
    }

    /// Padding before an option of `size` at offset `len`.
    fn padding(&self, len: usize, opt: u8, size: usize) -> usize {
        if size <= 1 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.align);
        (size - (len & (size - 1))) & (size - 1)
    }
}

fn format_arg(lua: &Lua, args: &MultiValue, func: &str) -> mlua::Result<Vec<u8>> {
    string_arg(lua, args, 0, func)
}

fn put_int(out: &mut Vec<u8>, n: i64, size: usize, little: bool) {
    let mut bytes = vec![0u8; size];
    let mut v = n as u64;
    for i in 0..size {
        let b = if i < 8 {
            (v & 0xff) as u8
        } else if n < 0 {
            0xff
        } else {
            0
        };
        if little {
            bytes[i] = b;
        } else {
            bytes[size - 1 - i] = b;
        }
        v = v.checked_shr(8).unwrap_or(0);
    }
    out.extend_from_slice(&bytes);
}

fn get_int(s: &[u8], little: bool, signed: bool) -> f64 {
    let mut v: u64 = 0;
    let size = s.len();
    for i in 0..size {
        let b = if little { s[size - 1 - i] } else { s[i] };
        v = (v << 8) | b as u64;
    }
    if signed && size < 8 && size > 0 {
        let shift = 64 - size * 8;
        ((v << shift) as i64 >> shift) as f64
    } else if signed {
        v as i64 as f64
    } else {
        v as f64
    }
}

fn structlib(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            let fmt = format_arg(lua, &args, "pack")?;
            let mut r = FormatReader { fmt: &fmt, pos: 0, little: cfg!(target_endian = "little"), align: 1 };
            let mut out = Vec::new();
            let mut arg = 1;
            while let Some((opt, size)) = r.next(lua)? {
                let pad = r.padding(out.len(), opt, size);
                out.extend(std::iter::repeat_n(0u8, pad));
                match opt {
                    b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                        let n = number_arg_or(lua, &args, arg, "pack", "nil")?;
                        arg += 1;
                        put_int(&mut out, n as i64, size, r.little);
                    }
                    b'x' => out.push(0),
                    b'f' => {
                        let n = number_arg_or(lua, &args, arg, "pack", "nil")? as f32;
                        arg += 1;
                        out.extend_from_slice(&if r.little { n.to_le_bytes() } else { n.to_be_bytes() });
                    }
                    b'd' => {
                        let n = number_arg_or(lua, &args, arg, "pack", "nil")?;
                        arg += 1;
                        out.extend_from_slice(&if r.little { n.to_le_bytes() } else { n.to_be_bytes() });
                    }
                    b'c' | b's' => {
                        let s = string_arg(lua, &args, arg, "pack")?;
                        arg += 1;
                        let mut len = s.len();
                        if opt == b'c' {
                            // c0: the whole string; cN: N bytes of it, which it must have.
                            if size > 0 {
                                if len < size {
                                    return fail(
                                        lua,
                                        &format!("bad argument #{} to 'pack' (string too short)", arg + 1),
                                    );
                                }
                                len = size;
                            }
                            out.extend_from_slice(&s[..len]);
                        } else {
                            out.extend_from_slice(&s);
                            out.push(0);
                        }
                    }
                    _ => {}
                }
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let fmt = format_arg(lua, &args, "unpack")?;
            let data = string_arg(lua, &args, 1, "unpack")?;
            let init = match args.get(2) {
                None | Some(Value::Nil) => 1,
                _ => number_arg(lua, &args, 2, "unpack")? as i64,
            };
            if init < 1 {
                return fail(lua, "bad argument #3 to 'unpack' (offset must be 1 or greater)");
            }
            let mut pos = (init - 1) as usize;
            let mut r = FormatReader { fmt: &fmt, pos: 0, little: cfg!(target_endian = "little"), align: 1 };
            let mut out: Vec<Value> = Vec::new();
            let too_short =
                |lua: &Lua| fail::<()>(lua, "bad argument #2 to 'unpack' (data string too short)");
            while let Some((opt, size)) = r.next(lua)? {
                pos += r.padding(pos, opt, size);
                match opt {
                    b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                        if pos + size > data.len() {
                            too_short(lua)?;
                        }
                        let signed = opt.is_ascii_lowercase();
                        out.push(Value::Number(get_int(&data[pos..pos + size], r.little, signed)));
                        pos += size;
                    }
                    b'x' => pos += 1,
                    b'f' | b'd' => {
                        if pos + size > data.len() {
                            too_short(lua)?;
                        }
                        let b = &data[pos..pos + size];
                        let n = if size == 4 {
                            let a: [u8; 4] = b.try_into().expect("4 bytes");
                            (if r.little { f32::from_le_bytes(a) } else { f32::from_be_bytes(a) }) as f64
                        } else {
                            let a: [u8; 8] = b.try_into().expect("8 bytes");
                            if r.little {
                                f64::from_le_bytes(a)
                            } else {
                                f64::from_be_bytes(a)
                            }
                        };
                        out.push(Value::Number(n));
                        pos += size;
                    }
                    b'c' => {
                        let mut len = size;
                        if len == 0 {
                            // c0: the length is the number unpacked just before.
                            match out.pop() {
                                Some(Value::Number(n)) => len = n as usize,
                                _ => {
                                    return fail(
                                        lua,
                                        "bad argument #1 to 'unpack' (format 'c0' needs a previous size)",
                                    )
                                }
                            }
                        }
                        if pos + len > data.len() {
                            too_short(lua)?;
                        }
                        out.push(Value::String(lua.create_string(&data[pos..pos + len])?));
                        pos += len;
                    }
                    b's' => {
                        let Some(end) = data[pos.min(data.len())..].iter().position(|&b| b == 0) else {
                            return fail(lua, "bad argument #2 to 'unpack' (unfinished string in data)");
                        };
                        out.push(Value::String(lua.create_string(&data[pos..pos + end])?));
                        pos += end + 1;
                    }
                    _ => {}
                }
            }
            out.push(Value::Number((pos + 1) as f64));
            Ok(MultiValue::from_iter(out))
        })?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|lua, args: MultiValue| {
            let fmt = format_arg(lua, &args, "size")?;
            let mut r = FormatReader { fmt: &fmt, pos: 0, little: true, align: 1 };
            let mut total = 0usize;
            while let Some((opt, size)) = r.next(lua)? {
                total += r.padding(total, opt, size);
                if opt == b's' {
                    return fail(lua, "bad argument #1 to 'size' (option 's' has no fixed size)");
                }
                if opt == b'c' && size == 0 {
                    return fail(lua, "bad argument #1 to 'size' (option 'c0' has no fixed size)");
                }
                total += size;
            }
            Ok(total as f64)
        })?,
    )?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// cmsgpack: lua-cmsgpack 0.4.0. Integral numbers take the smallest integer encoding, others a
// float when that loses nothing, else a double; a table whose keys are exactly 1..n is an
// array, any other a map; tables nested past 16 levels, functions and the like are nil.

const MSGPACK_MAX_NESTING: usize = 16;

fn msgpack_encode(v: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => msgpack_int(*n, out),
        Value::Number(n) => {
            if n.fract() == 0.0 && *n >= -9_223_372_036_854_775_808.0 && *n < 9_223_372_036_854_775_808.0 {
                msgpack_int(*n as i64, out);
            } else if (*n as f32) as f64 == *n || n.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let s = s.as_bytes();
            let len = s.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.push(0xd9);
                out.push(len as u8);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&s);
        }
        Value::Table(t) if level < MSGPACK_MAX_NESTING => {
            let (count, max, array) = array_shape(t)?;
            if array && max as usize == count {
                msgpack_len(out, count, 0x90, 0xdc, 0xdd);
                for i in 1..=count as i64 {
                    msgpack_encode(&t.raw_get::<Value>(i)?, level + 1, out)?;
                }
            } else {
                msgpack_len(out, count, 0x80, 0xde, 0xdf);
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, item) = pair?;
                    msgpack_encode(&k, level + 1, out)?;
                    msgpack_encode(&item, level + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn msgpack_len(out: &mut Vec<u8>, len: usize, fix: u8, b16: u8, b32: u8) {
    if len < 16 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn msgpack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Why a msgpack input could not be read.
enum MsgpackError {
    Missing,
    Bad,
}

struct MsgpackReader<'a> {
    s: &'a [u8],
    pos: usize,
}

impl MsgpackReader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MsgpackError> {
        let end = self.pos.checked_add(n).ok_or(MsgpackError::Missing)?;
        let b = self.s.get(self.pos..end).ok_or(MsgpackError::Missing)?;
        self.pos = end;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> Result<u64, MsgpackError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn value(&mut self, lua: &Lua) -> Result<mlua::Result<Value>, MsgpackError> {
        let tag = self.take(1)?[0];
        let num = |n: f64| Ok(Ok(Value::Number(n)));
        match tag {
            0x00..=0x7f => num(tag as f64),
            0xe0..=0xff => num(tag as i8 as f64),
            0xc0 => Ok(Ok(Value::Nil)),
            0xc2 => Ok(Ok(Value::Boolean(false))),
            0xc3 => Ok(Ok(Value::Boolean(true))),
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            0xcf => num(self.uint(8)? as f64),
            0xd0 => num(self.uint(1)? as u8 as i8 as f64),
            0xd1 => num(self.uint(2)? as u16 as i16 as f64),
            0xd2 => num(self.uint(4)? as u32 as i32 as f64),
            0xd3 => num(self.uint(8)? as i64 as f64),
            0xca => num(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => num(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf => self.string(lua, (tag & 0x1f) as usize),
            0xd9 | 0xc4 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)
            }
            0xda | 0xc5 => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)
            }
            0xdb | 0xc6 => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)
            }
            0x90..=0x9f => self.array(lua, (tag & 0x0f) as usize),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n)
            }
            0x80..=0x8f => self.map(lua, (tag & 0x0f) as usize),
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n)
            }
            _ => Err(MsgpackError::Bad),
        }
    }

    fn string(&mut self, lua: &Lua, n: usize) -> Result<mlua::Result<Value>, MsgpackError> {
        let b = self.take(n)?;
        Ok(lua.create_string(b).map(Value::String))
    }

    fn array(&mut self, lua: &Lua, n: usize) -> Result<mlua::Result<Value>, MsgpackError> {
        let t = match lua.create_table() {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        for i in 1..=n {
            let v = match self.value(lua)? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = t.raw_set(i, v) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(Value::Table(t)))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> Result<mlua::Result<Value>, MsgpackError> {
        let t = match lua.create_table() {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        for _ in 0..n {
            let k = match self.value(lua)? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let v = match self.value(lua)? {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if !k.is_nil() {
                if let Err(e) = t.raw_set(k, v) {
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(Value::Table(t)))
    }
}

/// Reads every object (unpack), or up to a limit from an offset (unpack_one, unpack_limit:
/// `limit_at` is where the offset argument is), the offset after them (-1 at the end) first.
fn msgpack_unpack(
    lua: &Lua,
    args: MultiValue,
    limit_at: Option<usize>,
    func: &str,
) -> mlua::Result<MultiValue> {
    let data = string_arg(lua, &args, 0, func)?;
    let (limit, offset) = match limit_at {
        None => (0usize, 0usize),
        // unpack_one(s, offset) and unpack_limit(s, limit, offset).
        Some(offset_at) => {
            let limit = if offset_at == 1 { 1 } else { number_arg(lua, &args, 1, func)? as i64 as usize };
            let offset = match args.get(offset_at) {
                None | Some(Value::Nil) => 0,
                _ => number_arg(lua, &args, offset_at, func)? as i64,
            };
            if offset < 0 {
                return fail(
                    lua,
                    &format!("Invalid request to unpack with offset of {offset} and limit of {limit}."),
                );
            }
            (limit, offset as usize)
        }
    };
    let mut r = MsgpackReader { s: &data, pos: offset };
    let mut out = Vec::new();
    while r.pos < data.len() && (limit == 0 || out.len() < limit) {
        match r.value(lua) {
            Ok(v) => out.push(v?),
            Err(MsgpackError::Missing) => return fail(lua, "Missing bytes in input."),
            Err(MsgpackError::Bad) => return fail(lua, "Bad data format in input."),
        }
    }
    if limit_at.is_some() {
        let next = if r.pos >= data.len() { -1 } else { r.pos as i64 };
        out.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_iter(out))
}

fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return fail(lua, "bad argument #0 to 'pack' (MessagePack pack needs input.)");
            }
            let mut out = Vec::new();
            for v in args.iter() {
                msgpack_encode(v, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| msgpack_unpack(lua, args, None, "unpack"))?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| msgpack_unpack(lua, args, Some(1), "unpack_one"))?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| msgpack_unpack(lua, args, Some(2), "unpack_limit"))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_and_rounds_as_luabitop() {
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(4_294_967_301.0), 5);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(2_147_483_648.0), -2_147_483_648);
    }

    #[test]
    fn msgpack_integers_take_the_smallest_form() {
        let enc = |n: i64| {
            let mut out = Vec::new();
            msgpack_int(n, &mut out);
            out
        };
        assert_eq!(enc(5), [0x05]);
        assert_eq!(enc(200), [0xcc, 200]);
        assert_eq!(enc(-5), [0xfb]);
        assert_eq!(enc(-100), [0xd0, 0x9c]);
        assert_eq!(enc(70000), [0xce, 0, 1, 0x11, 0x70]);
    }
}
