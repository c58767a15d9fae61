//! The test harness: a fresh, migrated database per test (a temporary SQLite file,
//! or a throw-away PostgreSQL schema when `TEST_DATABASE_URL` is set), builders for
//! organizations, users and tokens, and a cookie-keeping browser for the console.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use rapport::config::Config;
use rapport::db::{self, DbTarget, Pool};
use rapport::domain::audit::AuditContext;
use rapport::domain::orgs::{service, OrganizationRow};
use rapport::state::AppState;

pub const PASSWORD: &str = "correct horse battery";

pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, schema: String },
}

impl TestDb {
    pub fn create() -> (Self, DbTarget) {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => Self::postgres(admin_url),
            None => {
                let dir = std::env::temp_dir()
                    .join(format!("rapport-test-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let target = DbTarget::sqlite_file(&dir.join("rapport.db"));
                (TestDb::Sqlite(dir), target)
            }
        }
    }

    /// A throw-away schema on the PostgreSQL server at `admin_url`.
    pub fn postgres(admin_url: String) -> (Self, DbTarget) {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn =
            diesel::PgConnection::establish(&admin_url).expect("connect to the PostgreSQL server");
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create schema");
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options=-csearch_path%3D{schema}");
        (
            TestDb::Postgres { admin_url, schema },
            DbTarget::parse(&url).expect("url"),
        )
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDb::Postgres { admin_url, schema } => {
                if let Ok(mut conn) = diesel::PgConnection::establish(admin_url) {
                    let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                }
            }
        }
    }
}

pub struct TestApp {
    pub state: web::Data<AppState>,
    pub pool: Pool,
    pub target: DbTarget,
    // why: kept for its Drop, which removes the database when the test ends.
    pub _db: TestDb,
}

pub fn config_for(target: &DbTarget) -> Config {
    Config {
        data_dir: std::env::temp_dir(),
        database: target.clone(),
        addr: "127.0.0.1:0".into(),
        log_json: false,
        trust_proxy: false,
        json_limit: 16 * 1024,
        max_upload_bytes: 2 * 1024 * 1024,
        blob_store: Default::default(),
        system_mail: None,
        pool_size: 4,
        search: test_search(),
    }
}

/// The search backend of a test app: in memory, or with `RAPPORT_SEARCH=meilisearch` the
/// server at `MEILI_URL` under indexes of the test's own (`.ci/run` runs the search tests so).
pub fn test_search() -> rapport::config::SearchConfig {
    if std::env::var("RAPPORT_SEARCH").as_deref() != Ok("meilisearch") {
        return rapport::config::SearchConfig::Memory;
    }
    rapport::config::SearchConfig::Meilisearch {
        url: std::env::var("MEILI_URL").expect("RAPPORT_SEARCH=meilisearch needs MEILI_URL"),
        key: std::env::var("MEILI_MASTER_KEY").ok(),
        prefix: format!("t{}_", &uuid::Uuid::new_v4().simple().to_string()[..12]),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let dir = &self.state.config.data_dir;
        if dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("rapport-test-"))
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// An app whose configuration the test adjusts first.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let (db, target) = TestDb::create();
        let pool = db::connect(&target, 4).expect("pool");
        db::migrate(&mut pool.get().expect("conn")).expect("migrate");
        let mut config = config_for(&target);
        // Files (attachments, import copies) per test, so tests can count what is on disk.
        config.data_dir =
            std::env::temp_dir().join(format!("rapport-test-{}", uuid::Uuid::new_v4()));
        adjust(&mut config);
        let state = AppState::new(pool.clone(), config).await.expect("state");
        Self {
            state,
            pool,
            target,
            _db: db,
        }
    }

    /// A second instance over the same database and files, as behind a load balancer.
    pub async fn another_instance(&self) -> web::Data<AppState> {
        let pool = db::connect(&self.target, 4).expect("pool");
        AppState::new(pool, self.state.config.clone())
            .await
            .expect("state")
    }

    pub async fn service(
        &self,
    ) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>
    {
        test::init_service(rapport::app::build(self.state.clone())).await
    }

    pub fn org(&self, name: &str) -> OrganizationRow {
        let mut c = self.pool.get().expect("conn");
        service::create_org(&mut c, name).expect("create org")
    }

    /// Adds a member with [`PASSWORD`]; returns their user id.
    pub fn user(&self, org: &OrganizationRow, email: &str, role: &str) -> String {
        let mut c = self.pool.get().expect("conn");
        let (m, _) = service::add_member(
            &mut c,
            &AuditContext::cli(&org.id),
            service::NewMember {
                email,
                name: "",
                password: Some(PASSWORD),
                role,
            },
        )
        .expect("add member");
        m.user.id
    }

    pub fn token(&self, org: &OrganizationRow, user_id: &str) -> String {
        let mut c = self.pool.get().expect("conn");
        service::create_token(&mut c, &AuditContext::cli(&org.id), user_id, "test")
            .expect("token")
            .1
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
    /// The body as sent (binary downloads).
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_problem(&self) -> bool {
        self.header("content-type") == Some("application/problem+json")
    }
}

pub async fn send<S, B>(app: &S, req: TestRequest) -> Resp
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = req.to_request();
    let (method, path) = (req.method().to_string(), req.path().to_string());
    let res = test::call_service(app, req).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    crate::contract::check(&method, &path, status.as_u16(), content_type, &body);
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body.to_vec(),
    }
}

/// An API client holding a bearer token.
pub fn api(method: Method, path: &str, token: &str) -> TestRequest {
    TestRequest::default()
        .method(method)
        .uri(path)
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
}

/// A console user: keeps cookies between requests and sends the CSRF token as a
/// browser with htmx would.
pub struct Browser {
    pub cookies: HashMap<String, String>,
    pub ip: SocketAddr,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            cookies: HashMap::new(),
            ip: "10.1.2.3:5555".parse().expect("addr"),
        }
    }

    pub fn from_ip(ip: &str) -> Self {
        Self {
            cookies: HashMap::new(),
            ip: format!("{ip}:5555").parse().expect("addr"),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    fn request(&self, method: Method, path: &str) -> TestRequest {
        let mut req = TestRequest::default()
            .method(method)
            .uri(path)
            .peer_addr(self.ip);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.insert_header((header::COOKIE, cookie));
        }
        req
    }

    pub async fn send<S, B>(&mut self, app: &S, req: TestRequest) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let resp = send(app, req).await;
        for value in resp.headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let Ok(c) = actix_web::cookie::Cookie::parse(value.to_string()) else {
                continue;
            };
            let removal =
                c.max_age().is_some_and(|a| a.is_zero() || a.is_negative()) || c.value().is_empty();
            if removal {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_string(), c.value().to_string());
            }
        }
        resp
    }

    pub async fn get<S, B>(&mut self, app: &S, path: &str) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let req = self.request(Method::GET, path);
        self.send(app, req).await
    }

    /// A GET as htmx sends it (`HX-Request`).
    pub async fn hx_get<S, B>(&mut self, app: &S, path: &str) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let req = self
            .request(Method::GET, path)
            .insert_header(("HX-Request", "true"));
        self.send(app, req).await
    }

    /// A GET as htmx sends it to restore history it has no copy of: the full page.
    pub async fn hx_restore<S, B>(&mut self, app: &S, path: &str) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let req = self
            .request(Method::GET, path)
            .insert_header(("HX-Request", "true"))
            .insert_header(("HX-History-Restore-Request", "true"));
        self.send(app, req).await
    }

    /// A form post carrying the CSRF token as a hidden field, as a plain form does.
    pub async fn post_form<S, B>(&mut self, app: &S, path: &str, fields: &[(&str, &str)]) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let token = self.cookie("rapport_csrf").unwrap_or_default().to_string();
        all.push(("csrf_token", &token));
        let body = serde_urlencoded::to_string(&all).expect("form");
        let req = self
            .request(Method::POST, path)
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(body);
        self.send(app, req).await
    }

    /// A post as htmx sends it: the token in the `X-CSRF-Token` header.
    pub async fn hx_post<S, B>(&mut self, app: &S, path: &str, fields: &[(&str, &str)]) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let token = self.cookie("rapport_csrf").unwrap_or_default().to_string();
        let body = serde_urlencoded::to_string(fields).expect("form");
        let req = self
            .request(Method::POST, path)
            .insert_header(("HX-Request", "true"))
            .insert_header(("X-CSRF-Token", token))
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(body);
        self.send(app, req).await
    }

    /// A raw-body PUT as the console's upload forms send it (CSRF token in the header).
    pub async fn hx_put_raw<S, B>(
        &mut self,
        app: &S,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        let token = self.cookie("rapport_csrf").unwrap_or_default().to_string();
        let req = self
            .request(Method::PUT, path)
            .insert_header(("HX-Request", "true"))
            .insert_header(("X-CSRF-Token", token))
            .insert_header((header::CONTENT_TYPE, content_type.to_string()))
            .set_payload(body);
        self.send(app, req).await
    }

    /// Fetches the login page (for the CSRF cookie) and signs in.
    pub async fn sign_in<S, B>(&mut self, app: &S, email: &str, password: &str) -> Resp
    where
        S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        self.get(app, "/login").await;
        self.post_form(
            app,
            "/login",
            &[("email", email), ("password", password), ("next", "/")],
        )
        .await
    }
}

/// A `rapport` process the test started; killed (SIGKILL) when dropped.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl TestApp {
    /// The real `rapport serve` on this test's database and data directory (the same key
    /// opens what the test sealed), for tests that kill and restart a process.
    pub fn serve_binary(&self) -> Server {
        let url = match self.target.backend {
            rapport::db::Backend::Postgres => self.target.location.clone(),
            rapport::db::Backend::Sqlite => format!("sqlite://{}", self.target.location),
        };
        let port = free_port();
        let server = Server(
            std::process::Command::new(env!("CARGO_BIN_EXE_rapport"))
                .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
                .env("DATABASE_URL", &url)
                .env("RAPPORT_DATA_DIR", &self.state.config.data_dir)
                .env("RAPPORT_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_until_up(port);
        server
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_until_up(port: u16) {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the server did not start on port {port}");
}

/// The id of the first pipeline's stage called `name`, from a `GET /api/pipelines` answer.
pub fn stage_named(pipelines: &serde_json::Value, name: &str) -> String {
    pipelines["data"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}: {pipelines}"))["id"]
        .as_str()
        .expect("stage id")
        .to_string()
}

/// The ids of a list response's `data`, in its order.
pub fn ids_of(v: &serde_json::Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}
