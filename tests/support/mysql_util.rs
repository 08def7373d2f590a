//! The MariaDB server `tests/run.sh` starts, seen from a test: where it is,
//! a throwaway database per test (dropped when the guard goes, even on a
//! failed assertion), and scripts loaded with the `mariadb` client, which
//! understands DELIMITER blocks and dump comments.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use barge::endpoint::{DbEndpoint, Endpoint};

/// The variable holding the working password for barge connections in
/// these tests: the target role's, so that a test may set the source
/// role's variable to a wrong password without racing the others.
pub const PASSWORD_VAR: &str = "BARGE_TARGET_PASSWORD";

#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// The server from `BARGE_TEST_MYSQL_URL`; fails the test when it is unset.
pub fn server() -> Server {
    let raw = std::env::var("BARGE_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!(
            "BARGE_TEST_MYSQL_URL is not set, so there is no MariaDB to test against: \
             run these tests with `bash tests/run.sh` (it starts the servers), or start them with \
             `bash tests/services.sh start DIR` and `source DIR/env`"
        )
    });
    let url = url::Url::parse(&raw).unwrap_or_else(|e| panic!("BARGE_TEST_MYSQL_URL is not a URL: {e}"));
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    let s = Server {
        host: url.host_str().unwrap_or("127.0.0.1").to_string(),
        port: url.port().unwrap_or(3306),
        user: decode(url.username()),
        password: decode(url.password().unwrap_or("")),
    };
    std::env::set_var(PASSWORD_VAR, &s.password);
    s
}

impl Server {
    /// A barge URL for `db`, without the password (barge refuses those);
    /// `query` is appended as is (e.g. `ssl-mode=DISABLED`).
    pub fn url(&self, db: &str, query: &str) -> String {
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };
        format!("mysql://{}@{}:{}/{db}{q}", self.user, self.host, self.port)
    }

    pub fn endpoint(&self, db: &str, query: &str) -> DbEndpoint {
        match Endpoint::parse(&self.url(db, query)).expect("test URL parses") {
            Endpoint::Mysql(e) => e,
            other => panic!("not a MySQL endpoint: {other}"),
        }
    }

    /// The `mariadb` client for this server; the password goes through the
    /// environment, never argv.
    pub fn client(&self, db: Option<&str>) -> Command {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "--batch", "-h", &self.host, "-P", &self.port.to_string(), "-u", &self.user]);
        if let Some(db) = db {
            c.arg(format!("--database={db}"));
        }
        c.env("MYSQL_PWD", &self.password);
        c
    }

    /// Runs a script through the client; panics with its output on failure.
    pub fn run_script(&self, db: Option<&str>, script: &str) {
        let mut child = self
            .client(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the `mariadb` client (installed with the server by tests/services.sh): {e}"));
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mariadb client failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new, empty database named after `tag`, dropped with the guard.
    pub fn fresh_database(&self, tag: &str) -> TestDb {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("barge_t_{tag}_{}", &id[..10]);
        self.run_script(None, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;"));
        TestDb { server: self.clone(), name }
    }
}

pub struct TestDb {
    pub server: Server,
    pub name: String,
}

impl TestDb {
    pub fn endpoint(&self, query: &str) -> DbEndpoint {
        self.server.endpoint(&self.name, query)
    }

    pub fn load(&self, script: &str) {
        self.server.run_script(Some(&self.name), script);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = self
            .server
            .client(None)
            .args(["-e", &format!("DROP DATABASE IF EXISTS `{}`", self.name)])
            .output();
    }
}

/// A mysqldump of one database, made loadable into another: the
/// `CREATE DATABASE` and `USE` lines naming the dumped one are dropped.
pub fn retarget_dump(dump: &str) -> String {
    dump.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("CREATE DATABASE ") || (t.starts_with("USE `") && t.trim_end().ends_with("`;")))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
