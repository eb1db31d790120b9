//! The token flows end to end, against a local fake of Google's token
//! services that checks every field of every request.

mod failures;
mod fake_google;
mod impersonation;
mod jwt_bearer;
mod revocation;
mod secrets;
mod workload_identity;
