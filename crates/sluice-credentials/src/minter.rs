//! Minting one token per job with the configured credential, and revoking
//! it afterwards where Google allows.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::http::{Budget, Transport};
use crate::iam::{CLOUD_PLATFORM_SCOPE, Grantee, Impersonate};
use crate::issuer::unix_now;
use crate::sts::Exchange;
use crate::{
    AccessToken, Caller, Credential, CredentialError, CredentialErrorKind, ImpersonationSource,
    MAX_LIFETIME, MinterConfig, SluiceIssuer, iam, jwt_bearer, metadata, revoke, sts,
};

/// The gateway's own source token for impersonation is reused while it has
/// at least this long to live. It never leaves the gateway.
const SOURCE_REUSE_MARGIN: Duration = Duration::from_secs(120);

/// Mints a fresh token for each job.
///
/// Job tokens are never cached or shared: each [`Minter::mint`] call makes a
/// new one. Only the gateway's own source token for
/// [`Credential::Impersonation`] is reused between jobs.
pub struct Minter {
    config: MinterConfig,
    transport: Transport,
    source: Mutex<Option<Arc<AccessToken>>>,
}

impl Minter {
    /// Checks `config` and builds the minter's HTTP client (rustls).
    pub fn new(mut config: MinterConfig) -> Result<Self, CredentialError> {
        config.validate()?;
        config.lifetime = config.lifetime.min(MAX_LIFETIME);
        Ok(Self {
            transport: Transport::new(config.timeout)?,
            config,
            source: Mutex::new(None),
        })
    }

    /// Mints a token for one job.
    ///
    /// `caller` is the verified caller the job runs for. Only
    /// [`Credential::WorkloadIdentity`] uses it (Sluice's assertion is about
    /// it), and fails without it; the other kinds ignore it. The caller's
    /// own token is never an input: nothing an agent holds is exchanged.
    /// Transient failures are retried within the configured deadline.
    pub async fn mint(&self, caller: Option<&Caller>) -> Result<AccessToken, CredentialError> {
        let budget = Budget::new(self.config.deadline);
        let token = match &self.config.credential {
            Credential::ServiceAccountKey { key } => {
                jwt_bearer::mint(
                    &self.transport,
                    &budget,
                    key,
                    &self.config.scopes,
                    self.config.lifetime,
                )
                .await
            }
            Credential::WorkloadIdentity {
                audience,
                service_account,
                issuer,
            } => {
                let caller = caller.ok_or_else(|| {
                    CredentialError::invalid(
                        "this warehouse mints tokens by workload identity federation, with an \
                         assertion Sluice signs for the verified caller, and no caller was given",
                    )
                })?;
                self.federate(
                    &budget,
                    audience,
                    service_account.as_deref(),
                    issuer,
                    caller,
                )
                .await
            }
            Credential::Impersonation {
                source,
                service_account,
            } => self.impersonate(&budget, source, service_account).await,
        }?;
        tracing::debug!(expires_at = ?token.expires_at(), "minted an upstream token");
        Ok(token)
    }

    /// Whether [`Minter::revoke`] calls Google: only for
    /// [`Credential::ServiceAccountKey`] tokens (which Google issues for an
    /// hour) and only when a revocation URL is configured. Federated and
    /// `generateAccessToken` tokens cannot be revoked; they expire after the
    /// configured lifetime (federated tokens without impersonation, after an
    /// hour).
    pub fn revocable(&self) -> bool {
        self.revoke_url().is_some()
    }

    /// Revokes a token minted by this minter once its job is done. Does
    /// nothing, successfully, when the token is not [revocable](Self::revocable).
    pub async fn revoke(&self, token: &AccessToken) -> Result<(), CredentialError> {
        let Some(url) = self.revoke_url() else {
            return Ok(());
        };
        revoke::revoke(
            &self.transport,
            &Budget::new(self.config.deadline),
            url,
            token,
        )
        .await
    }

    fn revoke_url(&self) -> Option<&str> {
        match self.config.credential {
            Credential::ServiceAccountKey { .. } => self.config.endpoints.revoke_url.as_deref(),
            _ => None,
        }
    }

    async fn federate(
        &self,
        budget: &Budget,
        audience: &str,
        service_account: Option<&str>,
        issuer: &SluiceIssuer,
        caller: &Caller,
    ) -> Result<AccessToken, CredentialError> {
        // IAM Credentials only accepts a cloud-platform token; without
        // impersonation, the federated token is the job's token.
        let scope = match service_account {
            Some(_) => CLOUD_PLATFORM_SCOPE.to_owned(),
            None => self.config.scopes.join(" "),
        };
        let subject = crate::subject(caller);
        let exchange = Exchange {
            sts_url: &self.config.endpoints.sts_url,
            audience,
            scope: &scope,
            lifetime: self.config.lifetime,
            issuer: issuer.issuer(),
            caller: &subject,
        };
        let assertion = issuer.assertion(caller, audience, unix_now())?;
        let federated = sts::exchange(&self.transport, budget, &exchange, &assertion).await?;
        let Some(service_account) = service_account else {
            return Ok(federated);
        };
        let request = self.impersonation(service_account, Grantee::Federated);
        iam::generate_access_token(&self.transport, budget, &request, &federated).await
    }

    async fn impersonate(
        &self,
        budget: &Budget,
        source: &ImpersonationSource,
        service_account: &str,
    ) -> Result<AccessToken, CredentialError> {
        let grantee = match source {
            ImpersonationSource::Key(key) => Grantee::ServiceAccount(key.client_email()),
            ImpersonationSource::MetadataServer => Grantee::Attached,
        };
        let source_token = self.source_token(budget, source).await?;
        let request = self.impersonation(service_account, grantee);
        let token =
            iam::generate_access_token(&self.transport, budget, &request, &source_token).await;
        if token
            .as_ref()
            .is_err_and(|e| e.kind == CredentialErrorKind::Refused)
        {
            // The source token may be what was refused (revoked, or its
            // account disabled): fetch a new one next time.
            self.source
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
        token
    }

    fn impersonation<'a>(
        &'a self,
        service_account: &'a str,
        grantee: Grantee<'a>,
    ) -> Impersonate<'a> {
        Impersonate {
            iam_credentials_url: &self.config.endpoints.iam_credentials_url,
            service_account,
            scopes: &self.config.scopes,
            lifetime: self.config.lifetime,
            grantee,
        }
    }

    /// The gateway's own cloud-platform token: the cached one while fresh,
    /// else a new one from the key or the metadata server.
    async fn source_token(
        &self,
        budget: &Budget,
        source: &ImpersonationSource,
    ) -> Result<Arc<AccessToken>, CredentialError> {
        let cached = self
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(token) = cached.filter(|t| t.is_fresh(SOURCE_REUSE_MARGIN)) {
            return Ok(token);
        }
        let scopes = [CLOUD_PLATFORM_SCOPE.to_owned()];
        let token = match source {
            ImpersonationSource::Key(key) => {
                jwt_bearer::mint(&self.transport, budget, key, &scopes, self.config.lifetime)
                    .await?
            }
            ImpersonationSource::MetadataServer => {
                metadata::fetch(
                    &self.transport,
                    budget,
                    &self.config.endpoints.metadata_url,
                    &[CLOUD_PLATFORM_SCOPE],
                    self.config.lifetime,
                )
                .await?
            }
        };
        let token = Arc::new(token);
        *self.source.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&token));
        Ok(token)
    }
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter")
            .field("credential", &self.config.credential)
            .field("endpoints", &self.config.endpoints)
            .field("scopes", &self.config.scopes)
            .field("lifetime", &self.config.lifetime)
            .field("timeout", &self.config.timeout)
            .field("deadline", &self.config.deadline)
            .finish_non_exhaustive()
    }
}
