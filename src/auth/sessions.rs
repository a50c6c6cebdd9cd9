//! `AuthSession` cookies: made at login, keyed by the user's password salt, renewed on use
//! up to the session's longest life.

use super::*;

impl Auth {
    /// The salt that keys `name`'s session cookies: the password hash's salt, so a new
    /// password ends old sessions. `None` for a user without a password (no session).
    pub(super) async fn session_salt(&self, name: &str) -> Result<Option<(Vec<u8>, Vec<String>)>> {
        if let Some(h) = self.admins.get(name) {
            return Ok(Some((h.salt.clone(), vec![ADMIN_ROLE.to_owned()])));
        }
        Ok(self.user_doc(name).await?.and_then(|doc| {
            let hash = PasswordHash::from_fields(&doc)?;
            Some((hash.salt, Self::roles_of(&doc)))
        }))
    }

    /// A new session cookie for `name`, who has just shown a password; `None` when the user
    /// has no password to key it with.
    pub async fn cookie_for(&self, name: &str) -> Result<Option<String>> {
        let now = self.now();
        Ok(self.session_salt(name).await?.map(|(salt, _)| {
            crypto::make_cookie(
                &self.secret,
                &salt,
                &crypto::CookieClaims {
                    name: name.to_owned(),
                    expires: now.saturating_add(self.config.session_lifetime.as_secs()),
                    issued: now,
                },
            )
        }))
    }

    /// The session a cookie carries: `None` when it is forged, expired, past the session's
    /// longest life, or keyed by a password the user no longer has.
    pub(super) async fn cookie_session(&self, cookie: &str) -> Result<Option<Session>> {
        let now = self.now();
        let Some(name) = crypto::cookie_user(cookie) else {
            return Ok(None);
        };
        let Some((salt, roles)) = self.session_salt(&name).await? else {
            // No such user (deleted), or no password: the session ends with it.
            return Ok(None);
        };
        let Some(claims) = crypto::check_cookie(&self.secret, &salt, cookie) else {
            return Ok(None);
        };
        let ended = claims.expires <= now
            || now.saturating_sub(claims.issued) >= self.config.session_max_age.as_secs();
        if ended {
            return Ok(None);
        }
        let lifetime = self.config.session_lifetime.as_secs();
        let renewed = (claims.expires.saturating_sub(now) <= lifetime / 2).then(|| {
            // Renewal keeps when the session began, so it cannot be renewed forever.
            crypto::make_cookie(
                &self.secret,
                &salt,
                &crypto::CookieClaims {
                    expires: now.saturating_add(lifetime),
                    ..claims.clone()
                },
            )
        });
        Ok(Some(Session {
            user: UserCtx {
                name: Some(claims.name),
                roles,
            },
            method: Method::Cookie,
            renewed_cookie: renewed,
        }))
    }
}
