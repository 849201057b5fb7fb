//! Where raw values come from: the process environment over an optional TOML file
//! (named by `TESSERA_CONFIG_FILE`), or explicit pairs in tests.
//!
//! This is a thin layer of our own rather than `figment` or `config`: figment's `Env`
//! provider re-parses every value (`"x"` loses its quotes, `007` becomes `7`, `[a]` an
//! array), which would change a password or a Redis prefix; `config`'s `Environment`
//! lower-cases names (so `tessera_bind` would be read) and, without a prefix, fails on
//! a non-UTF-8 value of any unrelated variable; both treat TOML keys case-sensitively
//! where Tessera does not. Fed pre-filtered maps to avoid all that, either crate would
//! only merge two maps, which is what this file does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;

use super::{ConfigError, VARIABLES};

pub(super) const CONFIG_FILE: &str = "TESSERA_CONFIG_FILE";

/// Where raw values come from: the process environment over an optional TOML file.
pub struct Source {
    values: HashMap<String, String>,
    /// Every `TESSERA_*` name set in the environment (or the pairs), read or not.
    present: Vec<String>,
    /// The names the settings asked for, in the order asked: whatever
    /// [`Settings::from_source`](super::Settings::from_source) reads is a known variable,
    /// so the list of variables is written nowhere else.
    asked: RefCell<Vec<&'static str>>,
}

impl Source {
    /// The process environment, over the TOML file named by `TESSERA_CONFIG_FILE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_environment(std::env::vars_os())
    }

    /// Explicit values only (tests and embedding); nothing is read from the process.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let values: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let present = values
            .keys()
            .filter(|name| name.starts_with("TESSERA_"))
            .cloned()
            .collect();
        Self::new(values, present)
    }

    /// `vars` as the process environment: the file it names, then the variables over it.
    fn from_environment(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Self, ConfigError> {
        let mut present = Vec::new();
        let mut env = HashMap::new();
        for (name, value) in vars {
            // A name that is not UTF-8 is nobody's Tessera variable.
            let Ok(name) = name.into_string() else {
                continue;
            };
            if name.starts_with("TESSERA_") {
                present.push(name.clone());
            }
            if name == CONFIG_FILE || VARIABLES.contains(&name.as_str()) {
                let value = value
                    .into_string()
                    .map_err(|_| ConfigError::new(&name, "is not valid UTF-8"))?;
                env.insert(name, value);
            }
        }
        let mut values = match env.get(CONFIG_FILE) {
            Some(path) => read_toml_file(path)?,
            None => HashMap::new(),
        };
        values.extend(env);
        Ok(Self::new(values, present))
    }

    fn new(values: HashMap<String, String>, present: Vec<String>) -> Self {
        Self {
            values,
            present,
            // Read here, by the source itself, whether or not anything else asks.
            asked: RefCell::new(vec![CONFIG_FILE]),
        }
    }

    /// Every name asked for so far, in the order first asked.
    pub(super) fn asked(&self) -> Vec<&'static str> {
        self.asked.borrow().clone()
    }

    /// `TESSERA_*` variables that are set but that no setting reads (a typo, or a
    /// variable of another version), each with the closest known name if one is near.
    /// Call it after [`Settings::from_source`](super::Settings::from_source).
    /// `TESSERA_TEST_*` (the test suite's own variables) are left out.
    pub fn unknown_variables(&self) -> Vec<UnknownVariable> {
        let asked = self.asked.borrow();
        let mut unknown: Vec<UnknownVariable> = self
            .present
            .iter()
            .filter(|name| !asked.contains(&name.as_str()) && !name.starts_with("TESSERA_TEST_"))
            .map(|name| UnknownVariable {
                name: name.clone(),
                did_you_mean: asked
                    .iter()
                    .map(|known| (edit_distance(name, known), *known))
                    .filter(|(distance, _)| *distance <= 3)
                    .min()
                    .map(|(_, known)| known.to_owned()),
            })
            .collect();
        unknown.sort_by(|a, b| a.name.cmp(&b.name));
        unknown
    }

    fn mark_asked(&self, name: &'static str) {
        let mut asked = self.asked.borrow_mut();
        if !asked.contains(&name) {
            asked.push(name);
        }
    }

    /// The value as given (a password may begin or end with spaces).
    pub(super) fn get_untrimmed(&self, name: &'static str) -> Option<&str> {
        self.mark_asked(name);
        self.values.get(name).map(String::as_str)
    }

    /// The value without surrounding spaces; an empty value counts as unset.
    pub(super) fn get(&self, name: &'static str) -> Option<&str> {
        self.mark_asked(name);
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The variable `name` read by `parse`, or `default` when it is unset. The one place
    /// a variable is declared: its name, its default and its parser, together.
    pub(super) fn read<T>(
        &self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse(raw).map_err(|message| ConfigError::new(name, message)),
        }
    }
}

/// A `TESSERA_*` variable that is set but read by nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariable {
    pub name: String,
    pub did_you_mean: Option<String>,
}

impl std::fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a Tessera variable and is ignored", self.name)?;
        if let Some(known) = &self.did_you_mean {
            write!(f, " (did you mean {known}?)")?;
        }
        Ok(())
    }
}

/// Levenshtein distance, for suggesting the variable a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn read_toml_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(CONFIG_FILE, format!("cannot read {path}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| ConfigError::new(CONFIG_FILE, format!("{path} is not valid TOML: {e}")))?;
    let mut values = HashMap::new();
    for (key, value) in table {
        let name = toml_key_to_variable(&key);
        if !VARIABLES.contains(&name.as_str()) {
            return Err(ConfigError::new(
                CONFIG_FILE,
                format!("{path}: unknown key `{key}`"),
            ));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(ConfigError::new(
                    &name,
                    format!("{path}: `{key}` must be a string, number or boolean, not {other}"),
                ))
            }
        };
        values.insert(name, text);
    }
    Ok(values)
}

/// `database_url` -> `DATABASE_URL`; `issuer` -> `TESSERA_ISSUER`.
fn toml_key_to_variable(key: &str) -> String {
    let upper = key.to_ascii_uppercase();
    if upper == "DATABASE_URL" || upper == "REDIS_URL" {
        upper
    } else {
        format!("TESSERA_{upper}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    /// A TOML file that is removed when the test ends.
    struct TomlFile(std::path::PathBuf);

    impl TomlFile {
        fn new(text: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "tessera-config-{}-{:?}.toml",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TomlFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn environment(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let file = TomlFile::new("issuer = \"https://file.example\"\nbcrypt_cost = 13\n");
        let src = Source::from_environment(environment(&[
            (CONFIG_FILE, file.path()),
            ("TESSERA_ISSUER", "https://env.example"),
        ]))
        .unwrap();
        let settings = Settings::from_source(&src).unwrap();
        assert_eq!(settings.issuer, "https://env.example");
        assert_eq!(settings.passwords.bcrypt_cost, 13);
    }

    #[test]
    fn file_keys_are_variable_names_in_any_case() {
        let file = TomlFile::new("DATABASE_URL = \"postgres://db/x\"\nRedis_Prefix = \"p:\"\n");
        let src = Source::from_environment(environment(&[(CONFIG_FILE, file.path())])).unwrap();
        let settings = Settings::from_source(&src).unwrap();
        assert_eq!(settings.database.url, "postgres://db/x");
        assert_eq!(settings.redis.prefix, "p:");
    }

    #[test]
    fn an_unknown_file_key_is_an_error_of_the_file() {
        let file = TomlFile::new("isuer = \"https://file.example\"\n");
        let err = Source::from_environment(environment(&[(CONFIG_FILE, file.path())]))
            .err()
            .unwrap();
        assert_eq!(err.variable, CONFIG_FILE);
        assert!(err.message.ends_with(": unknown key `isuer`"), "{err}");
    }

    #[test]
    fn a_table_in_the_file_names_its_variable() {
        let file = TomlFile::new("[issuer]\nurl = \"https://file.example\"\n");
        let err = Source::from_environment(environment(&[(CONFIG_FILE, file.path())]))
            .err()
            .unwrap();
        assert_eq!(err.variable, "TESSERA_ISSUER");
        assert!(err.message.contains("must be a string, number or boolean"));
    }

    #[test]
    fn a_missing_or_broken_file_is_an_error_of_the_file() {
        let err = Source::from_environment(environment(&[(CONFIG_FILE, "/nonexistent/t.toml")]))
            .err()
            .unwrap();
        assert_eq!(err.variable, CONFIG_FILE);
        assert!(err.message.starts_with("cannot read /nonexistent/t.toml"));
        let file = TomlFile::new("issuer = \n");
        let err = Source::from_environment(environment(&[(CONFIG_FILE, file.path())]))
            .err()
            .unwrap();
        assert!(err.message.contains("is not valid TOML"), "{err}");
    }

    #[test]
    fn values_from_the_environment_are_taken_as_written() {
        let src = Source::from_environment(environment(&[
            ("TESSERA_REDIS_PREFIX", "007"),
            ("TESSERA_BOOTSTRAP_ADMIN", "root"),
            ("TESSERA_BOOTSTRAP_ADMIN_PASSWORD", " \"[0123]\" "),
        ]))
        .unwrap();
        let settings = Settings::from_source(&src).unwrap();
        assert_eq!(settings.redis.prefix, "007");
        let admin = settings.bootstrap_admin.unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(admin.password.expose_secret(), " \"[0123]\" ");
    }

    #[test]
    fn only_exact_names_are_read() {
        let src = Source::from_environment(environment(&[
            ("tessera_bind", "127.0.0.1:1"),
            ("TESSERA_DATABASE_URL", "postgres://elsewhere/x"),
            ("BIND", "127.0.0.1:2"),
        ]))
        .unwrap();
        let settings = Settings::from_source(&src).unwrap();
        assert_eq!(settings.http.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            settings.database.url,
            "postgres://postgres@127.0.0.1:5432/tessera"
        );
        assert_eq!(
            src.unknown_variables(),
            vec![UnknownVariable {
                name: "TESSERA_DATABASE_URL".to_owned(),
                did_you_mean: None,
            }]
        );
    }

    #[test]
    fn an_unknown_variable_is_reported_with_the_nearest_name() {
        let src =
            Source::from_pairs([("TESSERA_BIDN", "127.0.0.1:1"), ("TESSERA_TEST_REDIS", "x")]);
        Settings::from_source(&src).unwrap();
        assert_eq!(
            src.unknown_variables(),
            vec![UnknownVariable {
                name: "TESSERA_BIDN".to_owned(),
                did_you_mean: Some("TESSERA_BIND".to_owned()),
            }]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_utf8_names_its_variable_and_others_are_ignored() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0xff, 0xfe]);
        let mut vars = environment(&[]);
        vars.push((OsString::from("UNRELATED"), bad.clone()));
        assert!(Source::from_environment(vars.clone()).is_ok());
        vars.push((OsString::from("TESSERA_ISSUER"), bad));
        let err = Source::from_environment(vars).err().unwrap();
        assert_eq!(err.variable, "TESSERA_ISSUER");
    }
}
