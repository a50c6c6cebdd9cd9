//! How records and namespaces are laid out in redb's tables: keys, bounds, value headers.

use super::*;

pub(super) fn data_key(space: u32, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&space.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

/// The first key past the namespace's keys.
pub(super) fn space_end(space: u32) -> Bound<Vec<u8>> {
    match space.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    }
}

/// `number ‖ title` as stored in `namespaces`.
pub(super) fn split_space(raw: &[u8]) -> Result<(u32, &str)> {
    let corrupt = || StoreError::Corrupt("bad namespace entry".into());
    let (num, title) = raw.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let title = std::str::from_utf8(title).map_err(|_| corrupt())?;
    Ok((u32::from_be_bytes(*num), title))
}

pub(super) fn space_entry(num: u32, title: &str) -> Vec<u8> {
    let mut v = num.to_be_bytes().to_vec();
    v.extend_from_slice(title.as_bytes());
    v
}

/// Byte bounds in `data` for the namespace's part of the options' range.
pub(super) fn data_bounds(space: u32, opts: &ListOptions) -> Option<ByteRange> {
    let (lo, hi) = key_bounds(&opts.prefix, &opts.start, &opts.end)?;
    let with_ns = |k: Vec<u8>| {
        let mut out = space.to_be_bytes().to_vec();
        out.extend_from_slice(&k);
        out
    };
    let lo = match lo {
        Bound::Included(k) => Bound::Included(with_ns(k)),
        Bound::Excluded(k) => Bound::Excluded(with_ns(k)),
        Bound::Unbounded => Bound::Included(space.to_be_bytes().to_vec()),
    };
    let hi = match hi {
        Bound::Included(k) => Bound::Included(with_ns(k)),
        Bound::Excluded(k) => Bound::Excluded(with_ns(k)),
        Bound::Unbounded => space_end(space),
    };
    Some((lo, hi))
}

pub(super) fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

// Record encoding: version u64 LE ‖ expiration u64 LE (0 = none) ‖ metadata length u32 LE
// (u32::MAX = none) ‖ metadata ‖ value.
pub(super) const HEADER: usize = 20;

pub(super) fn encode(
    value: &[u8],
    metadata: Option<&str>,
    expiration: Option<u64>,
    version: u64,
) -> Vec<u8> {
    let meta = metadata.map(str::as_bytes);
    let mut out = Vec::with_capacity(HEADER + meta.map_or(0, <[u8]>::len) + value.len());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&expiration.unwrap_or(0).to_le_bytes());
    let mlen = meta.map_or(u32::MAX, |m| m.len() as u32);
    out.extend_from_slice(&mlen.to_le_bytes());
    if let Some(m) = meta {
        out.extend_from_slice(m);
    }
    out.extend_from_slice(value);
    out
}

pub(super) struct Decoded<'a> {
    pub(super) version: u64,
    pub(super) expiration: Option<u64>,
    pub(super) metadata: Option<String>,
    pub(super) value: &'a [u8],
}

pub(super) fn decode(raw: &[u8]) -> Result<Decoded<'_>> {
    let corrupt = || StoreError::Corrupt("record shorter than its header".into());
    let header = raw.get(..HEADER).ok_or_else(corrupt)?;
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let version = u64_at(0);
    let expiration = Some(u64_at(8)).filter(|&e| e != 0);
    let mut l = [0u8; 4];
    l.copy_from_slice(&header[16..20]);
    let mlen = u32::from_le_bytes(l);
    let (metadata, value) = if mlen == u32::MAX {
        (None, &raw[HEADER..])
    } else {
        let end = HEADER + mlen as usize;
        let m = raw.get(HEADER..end).ok_or_else(corrupt)?;
        let m = String::from_utf8(m.to_vec())
            .map_err(|_| StoreError::Corrupt("metadata is not UTF-8".into()))?;
        (Some(m), &raw[end..])
    };
    Ok(Decoded {
        version,
        expiration,
        metadata,
        value,
    })
}

pub(super) fn to_record(raw: &[u8]) -> Result<Record> {
    let d = decode(raw)?;
    Ok(Record {
        value: Bytes::copy_from_slice(d.value),
        metadata: d.metadata,
        expiration: d.expiration,
        version: d.version,
    })
}
