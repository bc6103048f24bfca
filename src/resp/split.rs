//! Splitting a line into arguments the way Redis does for inline commands and redis.conf
//! (`sdssplitargs`): blanks separate arguments, `"..."` takes C-style escapes (`\n`, `\xHH`),
//! `'...'` takes only `\'`, and a closing quote must be followed by a blank or the end.

/// Why a line could not be split.
#[derive(Debug, PartialEq, Eq)]
pub struct UnbalancedQuotes;

fn is_space(b: u8) -> bool {
    // NUL ends a C string in Redis; here it separates, so a binary inline line cannot loop.
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Split `line` into arguments; an empty or all-blank line gives no arguments.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, UnbalancedQuotes> {
    let mut args = Vec::new();
    let mut i = 0;
    let at = |i: usize| line.get(i).copied();
    loop {
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = at(i);
            if in_dq {
                match c {
                    None => return Err(UnbalancedQuotes),
                    Some(b'\\') if at(i + 1) == Some(b'x') => {
                        match (at(i + 2).and_then(hex), at(i + 3).and_then(hex)) {
                            (Some(h), Some(l)) => {
                                cur.push(h * 16 + l);
                                i += 3;
                            }
                            _ => {
                                cur.push(b'x');
                                i += 1;
                            }
                        }
                    }
                    Some(b'\\') if at(i + 1).is_some() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if at(i + 1).is_some_and(|b| !is_space(b)) {
                            return Err(UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else if in_sq {
                match c {
                    None => return Err(UnbalancedQuotes),
                    Some(b'\\') if at(i + 1) == Some(b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if at(i + 1).is_some_and(|b| !is_space(b)) {
                            return Err(UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else {
                match c {
                    None => break,
                    Some(b) if is_space(b) => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(b) => cur.push(b),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Result<Vec<String>, UnbalancedQuotes> {
        split_args(line.as_bytes())
            .map(|v| v.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect())
    }

    #[test]
    fn plain_and_quoted() {
        assert_eq!(s("SET a b").unwrap(), ["SET", "a", "b"]);
        assert_eq!(s("  ping  ").unwrap(), ["ping"]);
        assert!(s("").unwrap().is_empty());
        assert!(s("   \t ").unwrap().is_empty());
        assert_eq!(s(r#"set "a b" 'c d'"#).unwrap(), ["set", "a b", "c d"]);
        assert_eq!(s(r#"set "x\ny\x41" 'it\'s'"#).unwrap(), ["set", "x\nyA", "it's"]);
        assert_eq!(s(r#"set "" ''"#).unwrap(), ["set", "", ""]);
        assert_eq!(s(r#"set "\xZZ""#).unwrap(), ["set", "xZZ"]);
    }

    #[test]
    fn unbalanced() {
        assert_eq!(s(r#"set "abc"#), Err(UnbalancedQuotes));
        assert_eq!(s("set 'abc"), Err(UnbalancedQuotes));
        assert_eq!(s(r#"set "a"b"#), Err(UnbalancedQuotes));
        assert_eq!(s("set 'a'b"), Err(UnbalancedQuotes));
    }
}
