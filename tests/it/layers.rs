//! Issue 23's layout rules, read from the source: no import circle, no upward import, no I/O in
//! the pure layers, no long file or function.
//!
//! Std only, and deliberately small: a line-level reader of `use` trees and inline `crate::`
//! paths, not a Rust parser. What a file's `#[cfg(test)]` module imports does not count.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers under src/, bottom to top: a module imports only from its own layer or below.
const LAYERS: [&str; 8] = ["domain", "config", "inbound", "rules", "aws", "smoke", "flows", "lambda"];
/// The layers that make no AWS call, open no connection and run no task.
const PURE: [&str; 4] = ["domain", "config", "inbound", "rules"];
/// Crates the pure layers may not name; a trailing `*` matches any rest of the name.
const IO_CRATES: [&str; 5] = ["tokio", "reqwest", "aws_sdk_*", "aws_config", "lambda_runtime"];
/// What the pure layers may name of an SDK crate: its data model (`types`, `primitives`), plain
/// values with no client, connection or runtime behind them. A task definition is copied as the
/// SDK's `TaskDefinition` so that no field ECS adds is lost.
const SDK_DATA: [&str; 2] = ["types", "primitives"];
/// The longest a source file may be, its test module apart.
const MAX_FILE_LINES: usize = 400;
/// The longest a function outside a test module may be, signature to closing brace.
const MAX_FN_LINES: usize = 60;

#[test]
fn the_layers_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for krate in crates(root) {
        problems.extend(circles(&krate));
        if krate.dir == root.join("src") {
            problems.extend(layer_breaches(&krate));
        }
    }
    problems.extend(long_code(root));
    assert!(problems.is_empty(), "{} layout problems (issue 23):\n{}", problems.len(), problems.join("\n"));
}

/// One source file: where it is, the module it is, and its code before tests with comments and
/// literals blanked, its `use` statements apart.
struct SourceFile {
    shown: String,
    module: Vec<String>,
    folder: bool,
    uses: Vec<Use>,
    code: String,
}

/// One path a `use` statement names: the path, the name it binds, and whether it re-exports.
#[derive(Debug, PartialEq)]
struct Use {
    path: String,
    name: String,
    public: bool,
}

/// A crate's modules: its root folder and the files under it by module path.
struct Crate {
    dir: PathBuf,
    files: BTreeMap<Vec<String>, SourceFile>,
}

/// The crates whose circles count: the library, testkit, and testkit's folder binaries.
fn crates(root: &Path) -> Vec<Crate> {
    let mut out =
        vec![read_crate(root, &root.join("src"), "lib.rs"), read_crate(root, &root.join("testkit/src"), "lib.rs")];
    for bin in sorted_entries(&root.join("testkit/src/bin")) {
        if bin.join("main.rs").is_file() {
            out.push(read_crate(root, &bin, "main.rs"));
        }
    }
    out
}

fn read_crate(root: &Path, dir: &Path, root_file: &str) -> Crate {
    let mut files = BTreeMap::new();
    for path in rust_files(dir, &dir.join("bin")) {
        let rel = path.strip_prefix(dir).expect("under its crate");
        let mut module: Vec<String> =
            rel.iter().map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
        let folder = rel == Path::new(root_file) || module.last().is_some_and(|m| m == "mod");
        if folder {
            module.pop();
        }
        let text = fs::read_to_string(&path).expect("source file reads");
        let (uses, code) = take_uses(&code_of(&text).0);
        let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        files.insert(module.clone(), SourceFile { shown, module, folder, uses, code });
    }
    Crate { dir: dir.to_path_buf(), files }
}

/// Every .rs file under `dir`, in a stable order, leaving out the folder `skip` and test
/// modules kept in files of their own (`tests.rs`).
fn rust_files(dir: &Path, skip: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in sorted_entries(dir) {
        if entry.is_dir() && entry != skip {
            out.extend(rust_files(&entry, skip));
        } else if entry.extension().is_some_and(|e| e == "rs") && !entry.ends_with("tests.rs") {
            out.push(entry);
        }
    }
    out
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(read) => read.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    entries.sort();
    entries
}

/// A file's code with comments and literals blanked (see `strip`) and its `#[cfg(test)]`
/// modules emptied, line breaks kept; and how many lines are not test lines.
fn code_of(text: &str) -> (String, usize) {
    let stripped = strip(text);
    let lines: Vec<&str> = stripped.split('\n').collect();
    let mut test = vec![false; lines.len()];
    let mut k = 0;
    while k < lines.len() {
        let next = (k + 1..lines.len()).find(|&n| !lines[n].trim().is_empty() && !lines[n].trim().starts_with("#["));
        let opens = next.map(|n| lines[n].trim()).filter(|l| l.starts_with("mod ") || l.contains(" mod "));
        match (lines[k].trim() == "#[cfg(test)]", opens, next) {
            (true, Some(_), Some(start)) => {
                let end = module_end(&lines, start);
                test[k..=end].iter_mut().for_each(|t| *t = true);
                k = end + 1;
            }
            _ => k += 1,
        }
    }
    let kept: Vec<&str> = lines.iter().zip(&test).map(|(l, t)| if *t { "" } else { l }).collect();
    let count = text.lines().count() - test.iter().filter(|t| **t).count();
    (kept.join("\n"), count)
}

/// The line where the module declared on line `start` ends (its `;` or its closing brace).
fn module_end(lines: &[&str], start: usize) -> usize {
    let mut depth = 0;
    for (n, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                ';' if depth == 0 => return n,
                '{' => depth += 1,
                '}' if depth == 1 => return n,
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    lines.len() - 1
}

/// `text` with comments and the insides of string and char literals blanked, line breaks kept,
/// so that braces and paths read from it are code.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or(' ');
        let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if c[i] == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && at(1) == '*' {
            i = skip_until(&c, i + 2, &['*', '/'], &mut out);
        } else if c[i] == 'r' && !ident_before && (at(1) == '"' || (at(1) == '#' && (at(2) == '"' || at(2) == '#'))) {
            let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
            let mut close = vec!['"'];
            close.extend(std::iter::repeat_n('#', hashes));
            out.push_str("\"\"");
            i = skip_until(&c, i + 2 + hashes, &close, &mut out);
        } else if c[i] == '"' {
            out.push_str("\"\"");
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\n' {
                    out.push('\n');
                }
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c[i] == '\'' && at(1) == '\\' {
            out.push_str("' '");
            i = c[i + 3..].iter().position(|&q| q == '\'').map_or(c.len(), |p| i + 4 + p);
        } else if c[i] == '\'' && at(2) == '\'' {
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The index after the first `close` from `i`, keeping the line breaks passed over.
fn skip_until(c: &[char], mut i: usize, close: &[char], out: &mut String) -> usize {
    while i < c.len() && !c[i..].starts_with(close) {
        if c[i] == '\n' {
            out.push('\n');
        }
        i += 1;
    }
    i + close.len()
}

/// The `use` statements of `code`, expanded, and `code` with them blanked (lines kept).
fn take_uses(code: &str) -> (Vec<Use>, String) {
    let mut uses = Vec::new();
    let mut rest = String::with_capacity(code.len());
    let mut statement: Option<(bool, String)> = None;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if statement.is_none() {
            let public = trimmed.starts_with("pub");
            let body = trimmed.strip_prefix("pub").map_or(trimmed, |r| r.trim_start_matches(|c| c != ' ').trim_start());
            match body.strip_prefix("use ") {
                Some(tree) if public || trimmed.starts_with("use ") => statement = Some((public, tree.to_string())),
                _ => {
                    rest.push_str(line);
                    continue;
                }
            }
        } else if let Some((_, tree)) = statement.as_mut() {
            tree.push_str(line);
        }
        rest.push('\n');
        if let Some((public, tree)) = statement.take_if(|(_, t)| t.contains(';')) {
            let tree = tree.split(';').next().unwrap_or_default();
            uses.extend(expand(tree).into_iter().map(|(path, name)| Use { path, name, public }));
        }
    }
    (uses, rest)
}

/// Every path a `use` tree names, with the name it binds: `a::{b, c::{self, d as e}}` gives
/// a::b (b), a::c (c), a::c::d (e).
fn expand(tree: &str) -> Vec<(String, String)> {
    let mut compact = String::new();
    let mut words = tree.split_whitespace();
    while let Some(word) = words.next() {
        if word == "as" {
            let alias = words.next().unwrap_or_default();
            let name: String = alias.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            compact.push_str(&format!(" as {name}"));
            compact.push_str(&alias[name.len()..]);
        } else {
            compact.push_str(word);
        }
    }
    let mut out = Vec::new();
    expand_into("", compact.trim_start_matches("::"), &mut out);
    out
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<(String, String)>) {
    for part in split_top(tree) {
        if let (Some(open), true) = (part.find('{'), part.ends_with('}')) {
            expand_into(&join(prefix, part[..open].trim_end_matches("::")), &part[open + 1..part.len() - 1], out);
            continue;
        }
        let (part, alias) = part.split_once(" as ").map_or((part, None), |(p, a)| (p, Some(a.to_string())));
        if !part.is_empty() {
            let path = if part == "self" { prefix.to_string() } else { join(prefix, part) };
            let name = alias.unwrap_or_else(|| path.rsplit("::").next().unwrap_or_default().to_string());
            out.push((path, name));
        }
    }
}

/// `tree` split at its top-level commas.
fn split_top(tree: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..]);
    parts
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}::{rest}")
    }
}

/// The paths written inline in `code` (two or more segments), as written.
fn inline_paths(code: &str) -> Vec<String> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut token = String::new();
    for c in code.chars().chain([' ']) {
        if ident(c) || c == ':' {
            token.push(c);
        } else {
            let path = token.trim_matches(':');
            if path.contains("::")
                && !token.starts_with(':')
                && path.starts_with(|c: char| c.is_alphabetic() || c == '_')
            {
                out.push(path.to_string());
            }
            token.clear();
        }
    }
    out
}

/// One import between two files of a crate, and the path that makes it.
struct Edge {
    from: Vec<String>,
    to: Vec<String>,
    path: String,
}

impl Crate {
    /// The module file `path` names, seen from the module `from`, and the names after it; None
    /// when the path leaves the crate.
    fn resolve(&self, from: &[String], path: &str, depth: usize) -> Option<(Vec<String>, Vec<String>)> {
        let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty() && *s != "*").collect();
        let (mut full, rest): (Vec<String>, &[&str]) = match segs.first().copied()? {
            "crate" => (Vec::new(), &segs[1..]),
            "self" => (from.to_vec(), &segs[1..]),
            "super" => {
                let ups = segs.iter().take_while(|s| **s == "super").count();
                (from[..from.len().saturating_sub(ups)].to_vec(), &segs[ups..])
            }
            first if self.files.contains_key(&[from.to_vec(), vec![first.to_string()]].concat()) => {
                (from.to_vec(), &segs[..])
            }
            _ => return None,
        };
        full.extend(rest.iter().map(|s| s.to_string()));
        let k = (0..=full.len()).rev().find(|k| self.files.contains_key(&full[..*k]))?;
        let (module, names) = (full[..k].to_vec(), full[k..].to_vec());
        let reexport = names.first().and_then(|n| self.files[&module].uses.iter().find(|u| u.public && &u.name == n));
        match reexport {
            Some(u) if depth < 4 => {
                let (to, mut more) = self.resolve(&module, &u.path, depth + 1)?;
                more.extend(names[1..].iter().cloned());
                Some((to, more))
            }
            _ => Some((module, names)),
        }
    }

    /// Every import between two different files, re-exports of a folder's own files apart: a
    /// mod.rs that declares and re-exports its children makes no circle with them.
    fn edges(&self) -> Vec<Edge> {
        let mut out = Vec::new();
        for file in self.files.values() {
            let written = file.uses.iter().map(|u| (u.path.clone(), u.public));
            let inline = inline_paths(&file.code).into_iter().map(|p| (p, false));
            for (path, public) in written.chain(inline) {
                let Some((to, _)) = self.resolve(&file.module, &path, 0) else { continue };
                let own_child = to.starts_with(&file.module);
                if to != file.module && !(public && own_child) {
                    out.push(Edge { from: file.module.clone(), to, path });
                }
            }
        }
        out
    }
}

/// Every import circle between the crate's files, named by its files and the paths that tie
/// them: the pairs of files that import each other directly, or else every import inside it.
fn circles(krate: &Crate) -> Vec<String> {
    let edges = krate.edges();
    let mut ties: BTreeMap<(&Vec<String>, &Vec<String>), BTreeSet<&str>> = BTreeMap::new();
    let mut next: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for e in &edges {
        next.entry(&e.from).or_default().insert(&e.to);
        ties.entry((&e.from, &e.to)).or_default().insert(&e.path);
    }
    let shown = |m: &Vec<String>| krate.files[m].shown.clone();
    let named = |pair: &(&Vec<String>, &Vec<String>)| ties[pair].iter().copied().collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    for component in strongly_connected(&next) {
        let names: Vec<String> = component.iter().map(|m| shown(m)).collect();
        out.push(format!("import circle ({} files): {}", names.len(), names.join(" <-> ")));
        let inside: Vec<_> = ties.keys().filter(|(a, b)| component.contains(a) && component.contains(b)).collect();
        let mutual: Vec<_> = inside.iter().filter(|(a, b)| a < b && ties.contains_key(&(*b, *a))).collect();
        for (a, b) in &mutual {
            out.push(format!("    {} <-> {}: {} / {}", shown(a), shown(b), named(&(a, b)), named(&(b, a))));
        }
        for pair in inside.iter().filter(|_| mutual.is_empty()) {
            out.push(format!("    {} -> {}: {}", shown(pair.0), shown(pair.1), named(pair)));
        }
    }
    out
}

/// Tarjan's strongly connected components of more than one node, each in a stable order.
fn strongly_connected<'a>(next: &BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>) -> Vec<Vec<&'a Vec<String>>> {
    struct Walk<'a, 'g> {
        next: &'g BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, (usize, usize)>,
        stack: Vec<&'a Vec<String>>,
        out: Vec<Vec<&'a Vec<String>>>,
    }
    impl<'a> Walk<'a, '_> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, (n, n));
            self.stack.push(v);
            let next = self.next;
            for &w in next.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.index[w].1.min(self.index[v].1);
                    self.index.get_mut(v).expect("visited").1 = low;
                } else if self.stack.contains(&w) {
                    let low = self.index[w].0.min(self.index[v].1);
                    self.index.get_mut(v).expect("visited").1 = low;
                }
            }
            if self.index[v].0 == self.index[v].1 {
                let at = self.stack.iter().rposition(|m| *m == v).expect("on the stack");
                let mut component = self.stack.split_off(at);
                component.sort();
                if component.len() > 1 {
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk { next, index: BTreeMap::new(), stack: Vec::new(), out: Vec::new() };
    for &v in next.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out.sort();
    walk.out
}

/// The layer a module of src/ is in: the folder under src/ it sits in, when that is a layer.
fn layer(krate: &Crate, module: &[String]) -> Option<usize> {
    let file = &krate.files[module];
    let in_folder = module.len() > 1 || file.folder;
    module.first().filter(|_| in_folder).and_then(|top| LAYERS.iter().position(|l| l == top))
}

/// Imports from a pure layer into I/O, imports upward, and files outside any layer.
fn layer_breaches(krate: &Crate) -> Vec<String> {
    let mut out = Vec::new();
    let outside: Vec<&str> = krate
        .files
        .values()
        .filter(|f| !f.module.is_empty() && layer(krate, &f.module).is_none())
        .map(|f| f.shown.as_str())
        .collect();
    if !outside.is_empty() {
        out.push(format!("not in a layer ({} files): {}", outside.len(), outside.join(", ")));
    }
    for file in krate.files.values().filter(|f| !f.module.is_empty()) {
        let Some(own) = layer(krate, &file.module) else { continue };
        let pure = PURE.contains(&LAYERS[own]);
        let written = file.uses.iter().map(|u| u.path.clone());
        let mut seen = BTreeSet::new();
        for path in written.chain(inline_paths(&file.code)) {
            let first = path.split("::").next().unwrap_or_default();
            let sdk_data = first.starts_with("aws_sdk_") && SDK_DATA.iter().any(|m| path.split("::").nth(1) == Some(m));
            let io = !sdk_data
                && IO_CRATES.iter().any(|c| c.strip_suffix('*').map_or(first == *c, |p| first.starts_with(p)));
            let message = if pure && io {
                Some(format!("{} (pure layer {}) names {}", file.shown, LAYERS[own], path))
            } else {
                krate.resolve(&file.module, &path, 0).and_then(|(to, _)| {
                    let above = layer(krate, &to).filter(|l| *l > own)?;
                    let what = if pure && above >= 4 { "pure layer" } else { "layer" };
                    Some(format!(
                        "{} ({what} {}) imports {} from the layer above {}",
                        file.shown, LAYERS[own], path, LAYERS[above]
                    ))
                })
            };
            if let Some(message) = message.filter(|m| seen.insert(m.clone())) {
                out.push(message);
            }
        }
    }
    out
}

/// Files over MAX_FILE_LINES and functions over MAX_FN_LINES, their tests apart.
fn long_code(root: &Path) -> Vec<String> {
    let mut dirs = vec![root.join("src"), root.join("testkit/src"), root.join("cli/src")];
    dirs.extend(sorted_entries(&root.join("functions")).into_iter().map(|f| f.join("src")));
    let mut out = Vec::new();
    for path in dirs.iter().flat_map(|d| rust_files(d, Path::new(""))) {
        let text = fs::read_to_string(&path).expect("source file reads");
        let shown = path.strip_prefix(root).unwrap_or(&path).display();
        let (code, lines) = code_of(&text);
        if lines > MAX_FILE_LINES {
            out.push(format!("{shown}: {lines} lines outside its tests (at most {MAX_FILE_LINES})"));
        }
        for (name, line, length) in functions(&code) {
            if length > MAX_FN_LINES {
                out.push(format!("{shown}:{line}: fn {name} is {length} lines (at most {MAX_FN_LINES})"));
            }
        }
    }
    out
}

/// Each `fn` with a body in `code`: its name, first line (from 1) and length in lines.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let c: Vec<char> = code.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for i in 0..c.len().saturating_sub(3) {
        let keyword = c[i] == 'f' && c[i + 1] == 'n' && c[i + 2].is_whitespace() && (i == 0 || !ident(c[i - 1]));
        if !keyword {
            continue;
        }
        let name: String = c[i + 3..].iter().skip_while(|c| c.is_whitespace()).take_while(|c| ident(**c)).collect();
        let Some(open) = c[i..].iter().position(|&b| b == '{' || b == ';').map(|p| i + p).filter(|&p| c[p] == '{')
        else {
            continue;
        };
        let mut depth = 0;
        let close = (open..c.len()).find(|&k| {
            depth += match c[k] {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            depth == 0
        });
        let lines_to = |k: usize| c[..k].iter().filter(|&&b| b == '\n').count();
        if let (Some(close), false) = (close, name.is_empty()) {
            out.push((name, lines_to(i) + 1, lines_to(close) - lines_to(i) + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(files: &[(&str, &str)]) -> Crate {
        let mut map = BTreeMap::new();
        for (path, text) in files {
            let mut module: Vec<String> = path.trim_end_matches(".rs").split('/').map(String::from).collect();
            let folder = *path == "lib.rs" || module.last().is_some_and(|m| m == "mod");
            if folder {
                module.pop();
            }
            if *path == "lib.rs" {
                module.clear();
            }
            let (uses, code) = take_uses(&code_of(text).0);
            map.insert(module.clone(), SourceFile { shown: path.to_string(), module, folder, uses, code });
        }
        Crate { dir: PathBuf::from("src"), files: map }
    }

    #[test]
    fn a_use_group_across_lines_names_each_path() {
        let (uses, rest) = take_uses("pub use a::{b,\n    c::{self, d as e}};\nfn f() {}\n");
        let paths: Vec<(&str, &str, bool)> =
            uses.iter().map(|u| (u.path.as_str(), u.name.as_str(), u.public)).collect();
        assert_eq!(paths, [("a::b", "b", true), ("a::c", "c", true), ("a::c::d", "e", true)]);
        assert_eq!(rest, "\n\nfn f() {}\n");
    }

    #[test]
    fn comments_and_strings_name_no_path() {
        let code = strip(
            "let x = \"crate::aws\"; // crate::smoke\nlet y = r#\"crate::flows\"#; let c = '{';\n/* crate::lambda */",
        );
        assert!(inline_paths(&code).is_empty(), "{code}");
        assert_eq!(code.matches('\n').count(), 2);
    }

    #[test]
    fn inline_paths_are_read_whole() {
        assert_eq!(
            inline_paths("x = crate::aws::ecs::EcsClient::new(&c); tokio::spawn(f)"),
            ["crate::aws::ecs::EcsClient::new", "tokio::spawn"]
        );
    }

    #[test]
    fn the_test_module_is_left_out() {
        let text = "use a;\n#[cfg(test)]\nmod tests {\n    fn f() { \"}\"; }\n}\nfn g() {}\n";
        assert_eq!(code_of(text), ("use a;\n\n\n\n\nfn g() {}\n".to_string(), 2));
    }

    #[test]
    fn super_self_and_child_paths_resolve_to_files() {
        let k = krate(&[
            ("lib.rs", "pub mod a;\npub use a::b::Thing;\n"),
            ("a/mod.rs", "pub mod b;\n"),
            ("a/b.rs", ""),
            ("c.rs", ""),
        ]);
        let b = vec!["a".to_string(), "b".to_string()];
        assert_eq!(k.resolve(&b, "super::super::c::X", 0).map(|r| r.0), Some(vec!["c".to_string()]));
        assert_eq!(k.resolve(&b, "self::X", 0).map(|r| r.0), Some(b.clone()));
        assert_eq!(k.resolve(&["a".to_string()], "b::X", 0).map(|r| r.0), Some(b.clone()));
        assert_eq!(k.resolve(&[], "crate::Thing", 0).map(|r| r.0), Some(b.clone()), "through lib.rs's re-export");
        assert_eq!(k.resolve(&b, "std::fmt", 0), None);
    }

    #[test]
    fn two_files_that_reach_each_other_are_a_circle() {
        let k = krate(&[
            ("lib.rs", ""),
            ("a.rs", "use crate::b::B;\n"),
            ("b.rs", "fn f() { crate::a::g() }\n"),
            ("c.rs", "use crate::a;\n"),
        ]);
        let found = circles(&k);
        assert_eq!(found, ["import circle (2 files): a.rs <-> b.rs", "    a.rs <-> b.rs: crate::b::B / crate::a::g"]);
        let k = krate(&[
            ("lib.rs", ""),
            ("a.rs", "use crate::b::B;\n"),
            ("b.rs", "use crate::c::C;\n"),
            ("c.rs", "use crate::a::A;\n"),
        ]);
        assert_eq!(circles(&k).len(), 4, "a circle of three with no pair in it shows its three imports");
    }

    #[test]
    fn a_mod_rs_reexporting_its_children_is_no_circle() {
        let k = krate(&[
            ("lib.rs", ""),
            ("f/mod.rs", "mod x;\npub use x::X;\npub struct Y;\n"),
            ("f/x.rs", "use super::Y;\n"),
        ]);
        assert!(circles(&k).is_empty());
        let k =
            krate(&[("lib.rs", ""), ("f/mod.rs", "mod x;\nuse x::X;\npub struct Y;\n"), ("f/x.rs", "use super::Y;\n")]);
        assert_eq!(
            circles(&k)[0],
            "import circle (2 files): f/mod.rs <-> f/x.rs",
            "a mod.rs that uses its child in its own code does make one"
        );
    }

    #[test]
    fn a_pure_layer_naming_io_or_a_layer_above_is_reported() {
        let k = krate(&[
            ("lib.rs", ""),
            ("rules/mod.rs", "pub mod plan;\n"),
            ("rules/plan.rs", "use tokio::time;\nuse crate::aws::ecs::X;\nuse crate::config::Y;\nuse aws_sdk_ecs::types::Tag;\nuse aws_sdk_ecs::Client;\n"),
            ("aws/mod.rs", "pub mod ecs;\n"),
            ("aws/ecs.rs", "use crate::flows::Z;\n"),
            ("flows/mod.rs", ""),
            ("config/mod.rs", ""),
            ("loose.rs", ""),
        ]);
        let found = layer_breaches(&k);
        assert_eq!(found[0], "not in a layer (1 files): loose.rs");
        assert!(found.iter().any(|m| m.starts_with("rules/plan.rs (pure layer rules) names tokio::time")), "{found:?}");
        assert!(found.iter().any(|m| m.contains("imports crate::aws::ecs::X from the layer above aws")), "{found:?}");
        assert!(found.iter().any(|m| m.starts_with("aws/ecs.rs (layer aws) imports crate::flows::Z")), "{found:?}");
        // The SDK's data model is plain values; its client is I/O.
        assert!(found.iter().any(|m| m.ends_with("names aws_sdk_ecs::Client")), "{found:?}");
        assert!(!found.iter().any(|m| m.contains("aws_sdk_ecs::types")), "{found:?}");
        assert_eq!(found.len(), 5, "{found:?}");
    }

    #[test]
    fn functions_are_measured_from_signature_to_closing_brace() {
        let code = "fn short() {}\ntrait T { fn decl(&self); }\npub fn long(\n    x: u8,\n) -> u8 {\n    let s = \"}\";\n    x\n}\n";
        assert_eq!(functions(&strip(code)), [("short".to_string(), 1, 1), ("long".to_string(), 3, 6)]);
    }
}
