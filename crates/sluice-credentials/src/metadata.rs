//! The metadata server of the machine (or workload) the gateway runs on,
//! which hands out tokens of the service account attached to it.

use std::time::Duration;

use crate::http::{Answer, Budget, Call, Transport, form, json_object, oauth_token};
use crate::{AccessToken, CredentialError};

const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// Fetches a token of the attached service account with `scopes`. Where
/// the platform fixes the scopes (Compute Engine access scopes), the server
/// ignores the request for others.
pub(crate) async fn fetch(
    transport: &Transport,
    budget: &Budget,
    metadata_url: &str,
    scopes: &[&str],
    lifetime: Duration,
) -> Result<AccessToken, CredentialError> {
    let query = form(&[("scopes", &scopes.join(","))])?;
    let url = format!("{}{TOKEN_PATH}?{query}", metadata_url.trim_end_matches('/'));
    let call = Call {
        service: "the metadata server",
        url: &url,
        secrets: &[],
    };
    let answer = transport
        .send(&call, budget, || {
            transport
                .client()
                .get(&url)
                .header("Metadata-Flavor", "Google")
        })
        .await?;
    match answer {
        Answer::Success(body) => oauth_token(&mut json_object(&body, &call)?, &call, lifetime),
        Answer::Refused { detail, .. } => Err(CredentialError::refused(format!(
            "the metadata server refused the gateway's own token: {detail}; check that a service \
             account is attached to the instance or workload the gateway runs on"
        ))),
    }
}
