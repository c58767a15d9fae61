//! Attachments in an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage, R2…). rusty-s3 signs
//! the requests (SigV4 presigned URLs, no I/O of its own) and the ureq agent the plugins
//! already use sends them: no second HTTP stack or async runtime in the tree.

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::attachments::BlobStore;

/// How long a signed request stays valid: only as long as it takes to send it.
const SIGNED_FOR: Duration = Duration::from_secs(300);

pub use crate::config::S3Config;

pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    agent: ureq::Agent,
}

impl S3Store {
    pub fn new(config: &S3Config) -> Result<Self, String> {
        let endpoint: url::Url = config
            .endpoint
            .parse()
            .map_err(|e| format!("RAPPORT_S3_ENDPOINT is not a URL: {e}"))?;
        // Path style works with every S3-compatible server; virtual hosts need DNS for each
        // bucket.
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|e| format!("the S3 bucket settings are not usable: {e}"))?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::NativeTls)
                    .build(),
            )
            .build()
            .into();
        Ok(Self {
            bucket,
            credentials: Credentials::new(config.access_key.clone(), config.secret_key.clone()),
            prefix: config.prefix.clone(),
            agent,
        })
    }

    fn object(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn failed(what: &str, status: u16, body: &str) -> std::io::Error {
    let body: String = body.chars().take(300).collect();
    std::io::Error::other(format!("S3 {what} answered {status}: {body}"))
}

fn transport(e: ureq::Error) -> std::io::Error {
    std::io::Error::other(format!("S3 unreachable: {e}"))
}

impl BlobStore for S3Store {
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let object = self.object(key);
        let url = self
            .bucket
            .put_object(Some(&self.credentials), &object)
            .sign(SIGNED_FOR);
        let mut res = self
            .agent
            .put(url.as_str())
            .send(bytes)
            .map_err(transport)?;
        let status = res.status().as_u16();
        if !(200..300).contains(&status) {
            let body = res.body_mut().read_to_string().unwrap_or_default();
            return Err(failed("upload", status, &body));
        }
        Ok(())
    }

    fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        let object = self.object(key);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &object)
            .sign(SIGNED_FOR);
        let mut res = self.agent.get(url.as_str()).call().map_err(transport)?;
        let status = res.status().as_u16();
        if status == 404 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not in the bucket",
            ));
        }
        if !(200..300).contains(&status) {
            let body = res.body_mut().read_to_string().unwrap_or_default();
            return Err(failed("download", status, &body));
        }
        res.body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(transport)
    }

    fn delete(&self, key: &str) -> std::io::Result<()> {
        let object = self.object(key);
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), &object)
            .sign(SIGNED_FOR);
        let mut res = self.agent.delete(url.as_str()).call().map_err(transport)?;
        let status = res.status().as_u16();
        // Deleting what is already gone is fine: S3 answers 204 either way.
        if !(200..300).contains(&status) && status != 404 {
            let body = res.body_mut().read_to_string().unwrap_or_default();
            return Err(failed("delete", status, &body));
        }
        Ok(())
    }
}
