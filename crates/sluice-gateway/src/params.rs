//! URL query parameters of the BigQuery methods (`maxResults`,
//! `pageToken`, `timeoutMs`, …), parsed strictly: a malformed value is
//! `invalid`, never silently defaulted.

use std::collections::HashMap;

use crate::error::GatewayError;

/// The query string of one request.
#[derive(Debug, Default)]
pub struct QueryParams {
    values: HashMap<String, String>,
}

impl QueryParams {
    pub fn parse(query: Option<&str>) -> Result<Self, GatewayError> {
        let Some(query) = query else {
            return Ok(Self::default());
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| GatewayError::invalid(format!("Invalid query string: {e}")))?;
        Ok(Self {
            values: pairs.into_iter().collect(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &str,
        kind: &str,
    ) -> Result<Option<T>, GatewayError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    let shown: String = v.chars().take(40).collect();
                    GatewayError::invalid(format!(
                        "Invalid value at '{name}' ({kind}), \"{shown}\""
                    ))
                })
            })
            .transpose()
    }

    pub fn u32(&self, name: &str) -> Result<Option<u32>, GatewayError> {
        self.number(name, "TYPE_UINT32")
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, GatewayError> {
        self.number(name, "TYPE_UINT64")
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, GatewayError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(GatewayError::invalid(format!(
                    "Invalid value at '{name}' (TYPE_BOOL), \"{}\"",
                    v.chars().take(40).collect::<String>()
                ))),
            })
            .transpose()
    }

    /// `formatOptions.useInt64Timestamp`; BigQuery's default is false.
    pub fn use_int64_timestamp(&self) -> Result<bool, GatewayError> {
        Ok(self
            .bool("formatOptions.useInt64Timestamp")?
            .unwrap_or(false))
    }
}

/// Page tokens: opaque to clients, an offset to Sluice.
pub mod page_token {
    use super::GatewayError;

    pub fn encode(offset: u64) -> String {
        format!("o{offset}")
    }

    pub fn decode(token: &str) -> Result<u64, GatewayError> {
        token
            .strip_prefix('o')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| GatewayError::invalid("Invalid page token."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_checked() {
        let params = QueryParams::parse(Some(
            "maxResults=10&pageToken=o20&formatOptions.useInt64Timestamp=True&fields=a%2Cb",
        ))
        .unwrap();
        assert_eq!(params.u32("maxResults").unwrap(), Some(10));
        assert_eq!(params.get("fields"), Some("a,b"));
        assert!(params.use_int64_timestamp().unwrap());
        assert_eq!(
            page_token::decode(params.get("pageToken").unwrap()).unwrap(),
            20
        );

        let bad = QueryParams::parse(Some("maxResults=-1&timeoutMs=x")).unwrap();
        assert_eq!(bad.u32("maxResults").unwrap_err().reason, "invalid");
        assert!(page_token::decode("20").is_err());
    }
}
