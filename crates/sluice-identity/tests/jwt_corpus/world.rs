//! The world the JWT corpus runs against: the test keys, local OIDC
//! issuers (A and B) with an attacker's JWKS server on the side, the
//! development issuer, and the small language the corpus builds tokens
//! with (described in `corpus/jwt_attacks.json`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair,
};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_identity::{DevIssuer, IdentityConfig, RawIdentity, Verifier};

// ---------------------------------------------------------------- keys

pub enum Material {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    /// A published JWK with no private half (the weak RSA key).
    PublicOnly(Value),
}

pub struct TestKey {
    pub kid: String,
    pub material: Material,
}

impl TestKey {
    pub fn rsa(kid: &str) -> TestKey {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        TestKey {
            kid: kid.into(),
            material: Material::Rsa(pair),
        }
    }

    pub fn ec(kid: &str) -> TestKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        TestKey {
            kid: kid.into(),
            material: Material::Ec(pair),
        }
    }

    pub fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match &self.material {
            Material::Rsa(pair) => {
                let c = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Material::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                       "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            Material::PublicOnly(jwk) => jwk.clone(),
        }
    }

    /// Signs `message` as `alg` (the algorithm the token's signature really uses).
    pub fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match (&self.material, alg) {
            (Material::Ec(pair), "ES256") => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            (Material::Rsa(pair), "RS256" | "RS512" | "PS256") => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PSS_SHA256,
                };
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
            _ => panic!("key {} cannot sign {alg}", self.kid),
        }
    }

    pub fn rsa_public_der(&self) -> Vec<u8> {
        match &self.material {
            Material::Rsa(pair) => pair.public_key().as_ref().to_vec(),
            _ => panic!("{} is not an RSA key", self.kid),
        }
    }
}

pub struct Keys(HashMap<&'static str, TestKey>);

impl Keys {
    pub fn generate() -> Keys {
        let a_rs = TestKey::rsa("a-rs");
        // A 1024-bit modulus published as an RSA JWK: the verifier must refuse
        // to use it whatever the signature.
        let weak = TestKey {
            kid: "a-weak".into(),
            material: Material::PublicOnly(json!({
                "kty": "RSA", "kid": "a-weak", "use": "sig",
                "n": URL_SAFE_NO_PAD.encode([0xc7u8; 128]), "e": "AQAB"})),
        };
        Keys(HashMap::from([
            ("a_rs", a_rs),
            ("a_ec", TestKey::ec("a-ec")),
            ("a_ec_next", TestKey::ec("a-ec-next")),
            ("a_weak", weak),
            ("b_rs", TestKey::rsa("b-rs")),
            ("b_ec", TestKey::ec("b-ec")),
            ("attacker_ec", TestKey::ec("attacker")),
        ]))
    }

    pub fn get(&self, name: &str) -> &TestKey {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no test key {name:?}"))
    }
}

// ---------------------------------------------------------------- OIDC server

/// A local OIDC issuer serving discovery and a JWKS, counting JWKS fetches.
pub struct Oidc {
    pub base: String,
    pub jwks: Mutex<Vec<Value>>,
    pub jwks_fetches: AtomicUsize,
}

impl Oidc {
    pub async fn start(keys: Vec<Value>) -> Arc<Oidc> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let oidc = Arc::new(Oidc {
            base: format!("http://{}", listener.local_addr().unwrap()),
            jwks: Mutex::new(keys),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(oidc.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        oidc
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

async fn discovery(State(oidc): State<Arc<Oidc>>) -> axum::Json<Value> {
    axum::Json(json!({"issuer": oidc.base, "jwks_uri": format!("{}/jwks", oidc.base)}))
}

async fn jwks(State(oidc): State<Arc<Oidc>>) -> axum::Json<Value> {
    oidc.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"keys": *oidc.jwks.lock().unwrap()}))
}

// ---------------------------------------------------------------- corpus

#[derive(Deserialize)]
pub struct Corpus {
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: CaseConfig,
    #[serde(default)]
    pub before: Vec<Step>,
    pub build: Value,
    pub expect: Expect,
    pub error_contains: Option<String>,
    /// The refusal's kind (`AuthFailure::as_str`), for a rejected token.
    pub reason: Option<String>,
    pub principal: Option<ExpectedPrincipal>,
    #[serde(default = "one")]
    pub repeat: usize,
    #[serde(default)]
    pub jwks_fetches: HashMap<String, usize>,
}

fn one() -> usize {
    1
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseConfig {
    #[serde(default)]
    pub dev: bool,
    pub b_algorithms: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub verify: Option<Value>,
    pub expect: Option<Expect>,
    pub server: Option<String>,
    pub publish: Option<String>,
    pub retire: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Accept,
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedPrincipal {
    pub name: String,
    pub groups: Vec<String>,
}

/// What one case runs against.
pub struct World<'k> {
    pub keys: &'k Keys,
    pub a: Arc<Oidc>,
    pub b: Arc<Oidc>,
    pub attacker: Arc<Oidc>,
    pub dev: DevIssuer,
    pub verifier: Arc<Verifier>,
}

impl World<'_> {
    pub async fn new<'k>(
        keys: &'k Keys,
        case: &CaseConfig,
        dev_dir: &std::path::Path,
    ) -> World<'k> {
        let publish = |names: &[&str]| names.iter().map(|n| keys.get(n).jwk()).collect::<Vec<_>>();
        let a = Oidc::start(publish(&["a_rs", "a_ec", "a_weak"])).await;
        let b = Oidc::start(publish(&["b_rs", "b_ec"])).await;
        let attacker = Oidc::start(publish(&["attacker_ec"])).await;
        let mut issuer_b = json!({"issuer": b.base, "audiences": ["sluice"]});
        if let Some(algorithms) = &case.b_algorithms {
            issuer_b["algorithms"] = json!(algorithms);
        }
        let raw: RawIdentity = serde_json::from_value(json!({
            "issuers": [
                {"issuer": a.base, "audiences": ["sluice", "sluice-alt"], "name_claim": "email",
                 "groups_claim": "groups",
                 "groups": [{"group": "ci-etl", "when": {"repository": "acme/etl", "ref": "refs/heads/main"}}]},
                issuer_b,
            ],
            "development_issuer": {"enabled": case.dev},
        }))
        .unwrap();
        let config = IdentityConfig::from_raw(&raw).unwrap();
        let load_dev = || {
            DevIssuer::load_or_create(dev_dir, config.dev_issuer_id(), config.dev_audience())
                .unwrap()
        };
        let verifier = Arc::new(Verifier::new(config.clone(), Some(load_dev())).unwrap());
        World {
            keys,
            a,
            b,
            attacker,
            dev: load_dev(),
            verifier,
        }
    }

    pub fn server(&self, name: &str) -> &Oidc {
        match name {
            "A" => &self.a,
            "B" => &self.b,
            "attacker" => &self.attacker,
            other => panic!("no server {other:?}"),
        }
    }

    pub fn issuer_id(&self, name: &str) -> String {
        match name {
            "A" => self.a.base.clone(),
            "A/" => format!("{}/", self.a.base),
            "B" => self.b.base.clone(),
            "dev" => self.dev.issuer().to_string(),
            literal => literal.to_string(),
        }
    }

    /// Interprets a `build` description into a token.
    pub fn build(&self, spec: &Value) -> String {
        let text = |key: &str| spec.get(key).and_then(Value::as_str);
        if let Some(raw) = text("raw") {
            return raw.to_string();
        }
        if let Some(mint) = spec.get("mint") {
            let groups: Vec<String> = serde_json::from_value(mint["groups"].clone()).unwrap();
            return self.dev.mint(
                mint["sub"].as_str().unwrap(),
                &groups,
                Duration::from_secs(300),
            );
        }
        let key = self.keys.get(text("key").unwrap_or("a_ec"));
        let default_alg = match key.material {
            Material::Ec(_) => "ES256",
            _ => "RS256",
        };
        let alg = text("alg").unwrap_or(default_alg);
        let sign_alg = text("sign_alg").unwrap_or(alg);

        let mut header = Map::new();
        header.insert("alg".into(), json!(alg));
        header.insert("typ".into(), json!("JWT"));
        match spec.get("kid") {
            None => {
                header.insert("kid".into(), json!(key.kid));
            }
            Some(Value::Null) => {}
            Some(Value::String(kid)) if kid == "$dev_kid" => {
                header.insert("kid".into(), json!(self.dev.key_id()));
            }
            Some(kid) => {
                header.insert("kid".into(), kid.clone());
            }
        }
        if let Some(n) = spec.get("kid_len").and_then(Value::as_u64) {
            header.insert("kid".into(), json!("k".repeat(n as usize)));
        }
        for (name, value) in spec
            .get("header")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let value = match value.as_str() {
                Some("$attacker_jwks_url") => json!(format!("{}/jwks", self.attacker.base)),
                Some("$attacker_jwk") => self.keys.get("attacker_ec").jwk(),
                _ => value.clone(),
            };
            header.insert(name.clone(), value);
        }

        let now = now();
        let mut claims = json!({
            "iss": self.issuer_id(text("iss").unwrap_or("A")),
            "aud": "sluice",
            "sub": "alice",
            "email": "alice@example.com",
            "groups": ["analysts"],
            "repository": "acme/etl",
            "ref": "refs/heads/main",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        });
        let claims_map = claims.as_object_mut().unwrap();
        for (name, value) in spec
            .get("claims")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            match value {
                Value::Null => {
                    claims_map.remove(name);
                }
                Value::Object(o) if o.contains_key("$now") => {
                    let offset = o["$now"].as_i64().unwrap();
                    claims_map.insert(name.clone(), json!(now as i64 + offset));
                }
                _ => {
                    claims_map.insert(name.clone(), value.clone());
                }
            }
        }
        if let Some(target) = spec.get("pad_to").and_then(Value::as_u64) {
            claims_map.insert("pad".into(), json!("p".repeat(target as usize)));
        }

        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let signing_input = format!(
            "{}.{}",
            encode(&Value::Object(header.clone())),
            encode(&claims)
        );
        let signature = match sign_alg {
            "none" => Vec::new(),
            "HS256" | "HS384" | "HS512" => {
                let secret = match text("hmac_secret").unwrap_or("secret") {
                    "a_rs_public_der" => self.keys.get("a_rs").rsa_public_der(),
                    literal => literal.as_bytes().to_vec(),
                };
                let algorithm = match sign_alg {
                    "HS256" => hmac::HMAC_SHA256,
                    "HS384" => hmac::HMAC_SHA384,
                    _ => hmac::HMAC_SHA512,
                };
                hmac::sign(
                    &hmac::Key::new(algorithm, &secret),
                    signing_input.as_bytes(),
                )
                .as_ref()
                .to_vec()
            }
            other => key.sign(other, signing_input.as_bytes()),
        };
        let mut signature = URL_SAFE_NO_PAD.encode(signature);
        let mut signing_input = signing_input;
        match text("mutate") {
            None => {}
            Some("tamper_payload") => {
                claims["groups"] = json!(["analysts", "admins"]);
                let header_part = signing_input.split('.').next().unwrap().to_string();
                signing_input = format!("{header_part}.{}", encode(&claims));
            }
            Some("truncate_signature") => signature.truncate(signature.len() - 6),
            Some("drop_signature") => signature.clear(),
            Some("foreign_signature") => {
                let mut other = spec.clone();
                other.as_object_mut().unwrap().remove("mutate");
                other["claims"] = json!({"sub": "bob"});
                let other_token = self.build(&other);
                signature = other_token.rsplit('.').next().unwrap().to_string();
            }
            Some(unknown) => panic!("unknown mutation {unknown:?}"),
        }
        format!("{signing_input}.{signature}")
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
