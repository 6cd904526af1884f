//! The generic TOML field reader: a table read key by key, each error naming its file and key,
//! and leftovers reported as unknown keys.

use toml::{Table, Value};

use crate::domain::error::ConfigError;

/// Keeps error messages readable when they quote hostile input.
pub(super) fn cap(message: String) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message;
    }
    let cut = (0..=MAX).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
    format!("{}…", &message[..cut])
}

/// ECS names: letters, digits, hyphens and underscores, 1 to 255.
pub(super) fn is_ecs_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A table being read key by key, so leftovers can be reported as unknown keys.
pub(super) struct Fields<'a> {
    pub(super) table: Table,
    path: String,
    pub(super) source: &'a str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(table: Table, path: &str, source: &'a str) -> Self {
        Self { table, path: path.to_string(), source }
    }

    pub(super) fn key(&self, k: &str) -> String {
        // TOML allows an empty key (`"" = 1`); shown quoted, so an error always names a key.
        let k = if k.is_empty() { "\"\"" } else { k };
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    pub(super) fn err(&self, k: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.source.to_string(),
            key: crate::domain::image::truncate(&self.key(k)),
            message: cap(message),
        }
    }

    pub(super) fn take(&mut self, k: &str) -> Option<Value> {
        self.table.remove(k)
    }

    pub(super) fn type_err(&self, k: &str, want: &str, v: &Value) -> ConfigError {
        self.err(k, format!("must be {want}, found {}", v.type_str()))
    }

    pub(super) fn opt_str(&mut self, k: &str) -> Result<Option<String>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.type_err(k, "a string", &v)),
        }
    }

    pub(super) fn req_str(&mut self, k: &str) -> Result<String, ConfigError> {
        match self.opt_str(k)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.err(k, "must not be empty".into())),
            None => Err(self.err(k, "missing (required)".into())),
        }
    }

    pub(super) fn opt_name(&mut self, k: &str) -> Result<Option<String>, ConfigError> {
        let v = self.opt_str(k)?;
        if let Some(s) = &v {
            if !is_ecs_name(s) {
                return Err(self.err(k, format!("{s:?} is not a valid name (letters, digits, - and _, at most 255)")));
            }
        }
        Ok(v)
    }

    /// A cluster, by name or by ARN (`arn:aws:ecs:<region>:<account>:cluster/<name>`): its name.
    pub(super) fn opt_cluster(&mut self, k: &str) -> Result<Option<String>, ConfigError> {
        match self.opt_str(k)? {
            Some(s) if s.starts_with("arn:") => {
                crate::domain::arn::parse_cluster_arn(&s).map(Some).map_err(|e| self.err(k, e.0))
            }
            Some(s) if !is_ecs_name(&s) => {
                Err(self.err(k, format!("{s:?} is not a valid name (letters, digits, - and _, at most 255)")))
            }
            other => Ok(other),
        }
    }

    /// A service, by name or by ARN in either of ECS's forms (long `…:service/<cluster>/<name>`,
    /// short `…:service/<name>`): the cluster a long ARN names, and the name.
    pub(super) fn req_service(&mut self, k: &str) -> Result<(Option<String>, String), ConfigError> {
        match self.opt_str(k)? {
            Some(s) if s.starts_with("arn:") => {
                crate::domain::arn::parse_service_arn(&s).map(|a| (a.cluster, a.service)).map_err(|e| self.err(k, e.0))
            }
            Some(s) if is_ecs_name(&s) => Ok((None, s)),
            Some(s) => Err(self.err(k, format!("{s:?} is not a valid name (letters, digits, - and _, at most 255)"))),
            None => Err(self.err(k, "missing (required)".into())),
        }
    }

    pub(super) fn opt_bool(&mut self, k: &str) -> Result<Option<bool>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(v) => Err(self.type_err(k, "true or false", &v)),
        }
    }

    pub(super) fn req_name(&mut self, k: &str) -> Result<String, ConfigError> {
        match self.opt_name(k)? {
            Some(s) => Ok(s),
            None => Err(self.err(k, "missing (required)".into())),
        }
    }

    pub(super) fn opt_int(&mut self, k: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Integer(i)) if (min..=max).contains(&i) => Ok(Some(i)),
            Some(Value::Integer(i)) => Err(self.err(k, format!("{i} is out of range {min}..={max}"))),
            Some(v) => Err(self.type_err(k, "an integer", &v)),
        }
    }

    pub(super) fn opt_str_array(&mut self, k: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.opt_array(k, "a string", "an array of strings", |v| match v {
            Value::String(s) => Ok(s),
            other => Err(other),
        })
    }

    /// An optional array whose items `item` accepts; a rejected item is named by its index.
    pub(super) fn opt_array<T>(
        &mut self,
        k: &str,
        item_kind: &str,
        array_kind: &str,
        item: impl Fn(Value) -> Result<T, Value>,
    ) -> Result<Option<Vec<T>>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.into_iter().enumerate() {
                    out.push(item(v).map_err(|other| self.type_err(&format!("{k}[{i}]"), item_kind, &other))?);
                }
                Ok(Some(out))
            }
            Some(v) => Err(self.type_err(k, array_kind, &v)),
        }
    }

    pub(super) fn req_str_array(&mut self, k: &str) -> Result<Vec<String>, ConfigError> {
        self.opt_str_array(k)?.ok_or_else(|| self.err(k, "missing (required)".into()))
    }

    pub(super) fn table(&mut self, k: &str) -> Result<Option<Table>, ConfigError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(v) => Err(self.type_err(k, "a table", &v)),
        }
    }

    pub(super) fn array_of_tables(&mut self, k: &str) -> Result<Option<Vec<Table>>, ConfigError> {
        self.opt_array(k, "a table", "an array of tables ([[...]])", |v| match v {
            Value::Table(t) => Ok(t),
            other => Err(other),
        })
    }

    /// Reports the first key nobody asked for.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            Some(k) => Err(self.err(k, "unknown key".into())),
            None => Ok(()),
        }
    }
}
