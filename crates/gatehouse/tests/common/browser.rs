//! A real headless Chromium for the console's tests, steered line by line
//! through tests/console/browser.mjs (playwright-core).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    /// A desktop-sized window.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A phone-sized window (390×844, touch).
    pub fn phone() -> Self {
        Self::launch(true)
    }

    fn launch(phone: bool) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("browser.mjs"));
        if phone {
            cmd.arg("--phone");
        }
        let mut child = cmd
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs tests/console/browser.mjs (scripts/setup installs playwright-core)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Runs one command; its value, or the browser's error.
    pub fn try_run(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the browser driver answered {line:?}: {e}"));
        if answer["ok"] == true {
            Ok(answer["value"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or("?").to_string())
        }
    }

    pub fn run(&mut self, command: Value) -> Value {
        let shown = command.to_string();
        match self.try_run(command) {
            Ok(v) => v,
            Err(e) => {
                let errors = self.try_run(json!({"do": "errors"}));
                let html = self.try_run(json!({"do": "eval", "js": "document.body.innerHTML"}));
                panic!("browser: {shown}: {e}\nscript errors: {errors:?}\npage: {html:?}")
            }
        }
    }

    pub fn goto(&mut self, url: &str) {
        self.run(json!({"do": "goto", "url": url}));
    }

    pub fn fill(&mut self, sel: &str, value: &str) {
        self.run(json!({"do": "fill", "sel": sel, "value": value}));
    }

    pub fn click(&mut self, sel: &str) {
        self.run(json!({"do": "click", "sel": sel}));
    }

    /// Waits for `sel` to be visible (holding `text` when given); its text.
    pub fn wait(&mut self, sel: &str, text: Option<&str>) -> String {
        let mut c = json!({"do": "wait", "sel": sel});
        if let Some(t) = text {
            c["text"] = t.into();
        }
        self.run(c).as_str().unwrap_or_default().to_string()
    }

    pub fn gone(&mut self, sel: &str) {
        self.run(json!({"do": "gone", "sel": sel}));
    }

    pub fn text(&mut self, sel: &str) -> String {
        self.run(json!({"do": "text", "sel": sel}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn count(&mut self, sel: &str) -> u64 {
        self.run(json!({"do": "count", "sel": sel}))
            .as_u64()
            .unwrap()
    }

    pub fn eval(&mut self, js: &str) -> Value {
        self.run(json!({"do": "eval", "js": js}))
    }

    /// `fetch` from the page (same origin, its cookies): status and body.
    pub fn fetch(
        &mut self,
        method: &str,
        url: &str,
        headers: Value,
        body: Option<&str>,
    ) -> (u16, String) {
        let v = self.run(
            json!({"do": "fetch", "url": url, "method": method, "headers": headers, "body": body}),
        );
        (
            v["status"].as_u64().unwrap() as u16,
            v["body"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// The signed-in page's CSRF value.
    pub fn csrf(&mut self) -> String {
        self.eval("fetch('/ui/api/me').then(r => r.json()).then(m => m.csrf)")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// POSTs `{}` from the page as the console does: JSON, with the
    /// sign-in's CSRF value (or `csrf` when given: a wrong one, or none).
    pub fn post(&mut self, url: &str, csrf: Option<&str>) -> (u16, String) {
        let mut headers = json!({"Content-Type": "application/json"});
        let value = match csrf {
            Some(v) => v.to_string(),
            None => self.csrf(),
        };
        if !value.is_empty() {
            headers["X-Gatehouse-CSRF"] = value.into();
        }
        self.fetch("POST", url, headers, Some("{}"))
    }

    /// Saves the page as `<name>.png`: into docs/console (which the README
    /// shows) when GATEHOUSE_SCREENSHOTS is set, else into a temporary folder.
    pub fn screenshot(&mut self, name: &str) {
        let dir = if std::env::var_os("GATEHOUSE_SCREENSHOTS").is_some() {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console")
        } else {
            std::env::temp_dir().join("gatehouse-console-screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        self.run(json!({"do": "screenshot", "path": path, "full": true}));
    }

    /// Errors the page's scripts logged since the last call.
    pub fn script_errors(&mut self) -> Vec<String> {
        serde_json::from_value(self.run(json!({"do": "errors"}))).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
