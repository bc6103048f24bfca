//! Glob-style matching as Redis's `stringmatchlen` (KEYS, SCAN MATCH, CONFIG GET):
//! `*`, `?`, `[abc]`, `[^a-z]`, and `\` to escape. Binary-safe.

/// Does `s` match `pattern`?
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    matches(pattern, s, false, &mut false)
}

/// Case-insensitive variant, for configuration parameter names.
pub fn glob_match_nocase(pattern: &[u8], s: &[u8]) -> bool {
    matches(pattern, s, true, &mut false)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// `exhausted` is set when a `*` tried every suffix of the string and none matched: then no
/// enclosing `*` can do better by trying fewer bytes, which keeps hostile patterns such as
/// `a*a*a*...b` linear instead of exponential (Redis's fix for the same problem).
fn matches(mut p: &[u8], mut s: &[u8], nocase: bool, exhausted: &mut bool) -> bool {
    while let Some(&pc) = p.first() {
        match pc {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                for i in 0..=s.len() {
                    if matches(&p[1..], &s[i..], nocase, exhausted) {
                        return true;
                    }
                    if *exhausted {
                        return false;
                    }
                }
                *exhausted = true;
                return false;
            }
            b'?' => {
                if s.is_empty() {
                    return false;
                }
                s = &s[1..];
            }
            b'[' => {
                let Some(&c) = s.first() else { return false };
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut hit = false;
                loop {
                    match p {
                        [] => break,
                        [b'\\', x, ..] => {
                            if eq(*x, c, nocase) {
                                hit = true;
                            }
                            p = &p[2..];
                        }
                        [b']', ..] => break,
                        [lo, b'-', hi, ..] => {
                            let (mut lo, mut hi, mut c) = (*lo, *hi, c);
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            if nocase {
                                lo = lo.to_ascii_lowercase();
                                hi = hi.to_ascii_lowercase();
                                c = c.to_ascii_lowercase();
                            }
                            if c >= lo && c <= hi {
                                hit = true;
                            }
                            p = &p[3..];
                        }
                        [x, ..] => {
                            if eq(*x, c, nocase) {
                                hit = true;
                            }
                            p = &p[1..];
                        }
                    }
                }
                if hit == not {
                    return false;
                }
                s = &s[1..];
                if p.is_empty() {
                    // An unterminated class: Redis treats the pattern as ended here.
                    return s.is_empty();
                }
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if s.is_empty() || !eq(p[0], s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            _ => {
                if s.is_empty() || !eq(pc, s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let yes: &[(&str, &str)] = &[
            ("*", ""),
            ("*", "anything"),
            ("h?llo", "hello"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("key:\\*", "key:*"),
            ("*:*", "a:b"),
            ("user:[0-9]*", "user:42x"),
        ];
        for (p, s) in yes {
            assert!(glob_match(p.as_bytes(), s.as_bytes()), "{p} ~ {s}");
        }
        let no: &[(&str, &str)] = &[
            ("h?llo", "hllo"),
            ("h[^e]llo", "hello"),
            ("h[ae]llo", "hillo"),
            ("key:\\*", "key:a"),
            ("a*b", "acbd"),
            ("", "a"),
        ];
        for (p, s) in no {
            assert!(!glob_match(p.as_bytes(), s.as_bytes()), "{p} !~ {s}");
        }
        assert!(glob_match_nocase(b"MAXMEMORY*", b"maxmemory-policy"));
    }

    #[test]
    fn hostile_pattern_terminates() {
        let p = "*".repeat(50) + "a*".repeat(30).as_str() + "b";
        let s = "a".repeat(200);
        assert!(!glob_match(p.as_bytes(), s.as_bytes()));
    }
}
