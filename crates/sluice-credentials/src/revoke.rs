//! Revocation of a token at Google's OAuth revocation endpoint, once the
//! job it was minted for is done.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::http::{Answer, Budget, Call, Transport};
use crate::{AccessToken, CredentialError};

/// Revokes `token`. A token Google already considers invalid (expired or
/// revoked) counts as revoked.
pub(crate) async fn revoke(
    transport: &Transport,
    budget: &Budget,
    revoke_url: &str,
    token: &AccessToken,
) -> Result<(), CredentialError> {
    let call = Call {
        service: "Google's revocation endpoint",
        url: revoke_url,
        secrets: &[token.secret()],
    };
    let valid_until =
        || DateTime::<Utc>::from(token.expires_at()).to_rfc3339_opts(SecondsFormat::Secs, true);
    let answer = transport
        .send_form(&call, budget, &[("token", token.secret())])
        .await
        .map_err(|mut error| {
            error.message.push_str(&format!(
                "; the job's token stays valid until {}",
                valid_until()
            ));
            error
        })?;
    match answer {
        Answer::Success(_) => Ok(()),
        Answer::Refused { detail, .. } if detail.starts_with("invalid_token") => {
            tracing::debug!("the job's token was already invalid when revoked");
            Ok(())
        }
        Answer::Refused { detail, .. } => Err(CredentialError::refused(format!(
            "Google's revocation endpoint refused to revoke the job's token: {detail}; it stays \
             valid until {}",
            valid_until()
        ))),
    }
}
