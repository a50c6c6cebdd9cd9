//! The tables, one migration per entry, and which schema names are accepted.

/// The schema, one migration per entry; `schema_version` says how many ran.
pub(super) fn migrations(s: &str) -> Vec<String> {
    vec![format!(
        "CREATE SEQUENCE {s}.namespace_numbers;
         CREATE TABLE {s}.namespaces (
             id text PRIMARY KEY,
             title text NOT NULL UNIQUE,
             num bigint NOT NULL UNIQUE DEFAULT nextval('{s}.namespace_numbers'),
             version bigint NOT NULL DEFAULT 0,
             pruned_below bigint NOT NULL DEFAULT 0
         );
         CREATE TABLE {s}.kv (
             ns bigint NOT NULL,
             key bytea NOT NULL,
             value bytea NOT NULL,
             metadata text,
             expiration bigint,
             version bigint NOT NULL,
             PRIMARY KEY (ns, key)
         );
         CREATE INDEX kv_expiring ON {s}.kv (ns, expiration) WHERE expiration IS NOT NULL;
         CREATE TABLE {s}.changes (
             ns bigint NOT NULL,
             version bigint NOT NULL,
             idx integer NOT NULL,
             key bytea NOT NULL,
             kind smallint NOT NULL,
             metadata text,
             expiration bigint,
             PRIMARY KEY (ns, version, idx)
         );"
    )]
}

pub(super) fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}
