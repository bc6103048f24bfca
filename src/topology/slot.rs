//! Redis Cluster's hash slots: `CRC16/XMODEM(key) mod 16384`, hashing only the hash tag (the
//! bytes between the first `{` and the next `}`) when that part is non-empty. Every role and
//! the client must agree on this bit for bit, so it is tested against known values and
//! against `redis_protocol::redis_keyslot`.

/// Number of hash slots, as in Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The part of `key` that is hashed: the hash tag when there is a non-empty one, else the key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = memchr::memchr(b'{', key) {
        if let Some(len) = memchr::memchr(b'}', &key[open + 1..]) {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of a key.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key)) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_xmodem() {
        assert_eq!(crc16::State::<crc16::XMODEM>::calculate(b"123456789"), 0x31C3);
    }

    #[test]
    fn known_slots() {
        // Values checked against a real Redis Cluster's CLUSTER KEYSLOT.
        let known: &[(&[u8], u16)] = &[
            (b"foo", 12182),
            (b"bar", 5061),
            (b"hello", 866),
            (b"somekey", 11058),
            (b"{user1000}.following", 3443),
            (b"{user1000}.a", 3443),
            (b"{}foo", 9500),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}", 4015),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"{bar", 4015),
            (b"", 0),
        ];
        for (key, slot) in known {
            assert_eq!(key_slot(key), *slot, "key {:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn hash_tags() {
        assert_eq!(hash_tag(b"{user1000}.a"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}"), b"{bar");
        assert_eq!(hash_tag(b"no tag"), b"no tag");
        assert_eq!(key_slot(b"{user1000}.a"), key_slot(b"{user1000}.b"));
    }

    #[test]
    fn agrees_with_redis_protocol_oracle() {
        // A deterministic spread of keys: ASCII, binary, tagged, and degenerate braces.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let mut key: Vec<u8> = (0..len).map(|j| (x >> (j % 8 * 8)) as u8).collect();
            match i % 4 {
                0 => key.extend_from_slice(format!("key:{i}").as_bytes()),
                1 => key.splice(0..0, b"{tag}".iter().copied()).for_each(drop),
                2 => key.extend_from_slice(b"{}{x}"),
                _ => {}
            }
            assert_eq!(key_slot(&key), redis_protocol::redis_keyslot(&key), "key {key:?}");
        }
    }
}
