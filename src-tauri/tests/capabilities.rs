//! Each window's capability grants exactly what its page calls: nothing granted that the
//! page does not use, nothing used that is not granted.
//!
//! The "used" side is read statically from `ui/`: the window's page → its module scripts →
//! their imports, transitively. In those modules every IPC call (`<internals>.invoke(...)`,
//! which is how `ui/js/tauri.js` reaches Rust) is found in code the page can run (top-level
//! code, and the functions it references, transitively across imports), and its command
//! name is followed back through wrapper parameters to string literals: `tauri.js`'s
//! `invoke(cmd, args)` takes the names of its callers, `diagnostics.js`'s `action(cmd, ..)`
//! those of its own. So `listen` counts only on pages that call `tauri.js`'s `listen` (which
//! invokes `plugin:event|listen` and returns the function that invokes `plugin:event|unlisten`).
//! A command name the scanner cannot follow to a literal fails the test, so it never misses
//! one silently.
//!
//! Commands map to permissions as `tauri-build` names them: an app command `get_status` →
//! `allow-get-status` (the commands listed in `build.rs`), a core plugin command
//! `plugin:event|listen` → `core:event:allow-listen`.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use taskbell_app::model::WindowKind;

/// Core plugins: their permissions are prefixed `core:`.
const CORE_PLUGINS: &[&str] = &[
    "app",
    "event",
    "image",
    "menu",
    "path",
    "resources",
    "tray",
    "webview",
    "window",
];

/// JS keywords after which a `/` starts a regular expression, not a division.
const REGEX_AFTER_WORD: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "case",
    "do",
    "else",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "yield",
    "await",
];

/// A JS token; enough of JS for following calls, imports and function bodies.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier, keyword or number.
    Word(String),
    /// A string literal (or a template literal without `${}`), unescaped.
    Str(String),
    /// A template literal with `${}` (the interpolated code is lexed as tokens after it).
    Template,
    /// A regular expression literal.
    Regex,
    /// Any other character.
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Lexes JS: skips comments, reads strings, template literals (with their `${}` code) and
/// regular expression literals, so braces inside them do not count.
fn lex(src: &str, file: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut depth = 0usize;
    // The brace depth at each open `${`, innermost last.
    let mut interpolations: Vec<usize> = Vec::new();
    // Reads a template literal's text from `i` up to its end or its next `${`.
    // Returns (text, ended).
    let template_part = |i: &mut usize, line: &mut usize| -> Result<(String, bool), String> {
        let mut text = String::new();
        loop {
            match at(*i) {
                '\0' => return Err(format!("{file}:{line}: unterminated template literal")),
                '\\' => {
                    text.push(at(*i + 1));
                    *i += 2;
                }
                '`' => {
                    *i += 1;
                    return Ok((text, true));
                }
                '$' if at(*i + 1) == '{' => {
                    *i += 2;
                    return Ok((text, false));
                }
                c => {
                    if c == '\n' {
                        *line += 1;
                    }
                    text.push(c);
                    *i += 1;
                }
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        let regex_ok = regex_may_start(out.last());
        let mut push = |tok: Tok| {
            out.push(Token {
                tok,
                line: start_line,
            })
        };
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                i += 2;
                while !(at(i) == '*' && at(i + 1) == '/') {
                    match at(i) {
                        '\0' => return Err(format!("{file}:{start_line}: unterminated comment")),
                        '\n' => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
                i += 2;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match at(i) {
                        '\0' | '\n' => {
                            return Err(format!("{file}:{start_line}: unterminated string"));
                        }
                        '\\' => {
                            s.push(at(i + 1));
                            i += 2;
                        }
                        q if q == quote => {
                            i += 1;
                            break;
                        }
                        ch => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let (text, ended) = template_part(&mut i, &mut line)?;
                if ended {
                    push(Tok::Str(text));
                } else {
                    push(Tok::Template);
                    interpolations.push(depth);
                }
            }
            '/' if regex_ok => {
                i += 1;
                let mut class = false;
                loop {
                    match at(i) {
                        '\0' | '\n' => {
                            return Err(format!("{file}:{start_line}: unterminated regex"));
                        }
                        '\\' => i += 1,
                        '[' => class = true,
                        ']' => class = false,
                        '/' if !class => break,
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                while is_word_char(at(i)) {
                    i += 1;
                }
                push(Tok::Regex);
            }
            c if is_word_char(c) => {
                let mut w = String::new();
                while is_word_char(at(i)) {
                    w.push(at(i));
                    i += 1;
                }
                push(Tok::Word(w));
            }
            '}' if interpolations.last() == Some(&depth) => {
                // The end of a `${}`: the template literal goes on.
                interpolations.pop();
                i += 1;
                let (_, ended) = template_part(&mut i, &mut line)?;
                if !ended {
                    interpolations.push(depth);
                }
            }
            c => {
                if c == '{' {
                    depth += 1;
                } else if c == '}' {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| format!("{file}:{line}: unbalanced '}}'"))?;
                }
                push(Tok::Punct(c));
                i += 1;
            }
        }
    }
    Ok(out)
}

fn regex_may_start(prev: Option<&Token>) -> bool {
    match prev.map(|t| &t.tok) {
        None => true,
        Some(Tok::Punct(c)) => "(,=:[!&|?{};+-*%<>~^".contains(*c),
        Some(Tok::Word(w)) => REGEX_AFTER_WORD.contains(&w.as_str()),
        Some(_) => false,
    }
}

/// A top-level function declaration, or (name `None`) the module's other top-level code.
#[derive(Debug)]
struct Unit {
    name: Option<String>,
    exported: bool,
    /// Parameter names by position (`None` for a destructuring pattern).
    params: Vec<Option<String>>,
}

/// Which tokens are not code to scan: import statements and function names where declared.
const NOT_CODE: usize = usize::MAX;

#[derive(Debug)]
struct Module {
    path: PathBuf,
    toks: Vec<Token>,
    units: Vec<Unit>,
    /// The unit each token belongs to (index into `units`), or `NOT_CODE`.
    owner: Vec<usize>,
    /// Local name → (module, exported name).
    imports: HashMap<String, (PathBuf, String)>,
    /// Every name this module exports (functions and values).
    exports: BTreeSet<String>,
    /// The modules it imports.
    deps: Vec<PathBuf>,
}

impl Module {
    fn word(&self, i: usize) -> Option<&str> {
        match self.toks.get(i).map(|t| &t.tok) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn punct(&self, i: usize, c: char) -> bool {
        self.toks.get(i).map(|t| &t.tok) == Some(&Tok::Punct(c))
    }

    fn at(&self, i: usize) -> String {
        let line = self.toks.get(i).map_or(0, |t| t.line);
        format!("{}:{line}", self.path.display())
    }

    /// The index of the bracket closing the one at `open`.
    fn closing(&self, open: usize) -> Result<usize, String> {
        let mut depth = 0usize;
        for (i, t) in self.toks.iter().enumerate().skip(open) {
            match t.tok {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                _ => {}
            }
        }
        Err(format!("{}: unbalanced bracket", self.at(open)))
    }

    /// The arguments of the call whose `(` is at `open`, as token index ranges.
    fn args(&self, open: usize) -> Result<Vec<(usize, usize)>, String> {
        let close = self.closing(open)?;
        let mut args = Vec::new();
        let mut start = open + 1;
        let mut i = open + 1;
        while i < close {
            match self.toks[i].tok {
                Tok::Punct('(' | '[' | '{') => i = self.closing(i)?,
                Tok::Punct(',') => {
                    args.push((start, i));
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        if start < close {
            args.push((start, close));
        }
        Ok(args)
    }

    /// The unit of this module with this name.
    fn unit(&self, name: &str) -> Option<usize> {
        self.units
            .iter()
            .position(|u| u.name.as_deref() == Some(name))
    }
}

/// `base`'s directory joined with the relative specifier `spec`, normalised.
fn resolve_spec(base: &Path, spec: &str) -> Result<PathBuf, String> {
    if !(spec.starts_with("./") || spec.starts_with("../")) {
        return Err(format!(
            "{}: import {spec:?} is not a relative path to a file in ui/",
            base.display()
        ));
    }
    let mut out = base.parent().unwrap_or(Path::new("")).to_path_buf();
    for c in Path::new(spec).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(format!("{}: {spec:?} leaves ui/", base.display()));
                }
            }
            Component::Normal(p) => out.push(p),
            _ => return Err(format!("{}: odd import {spec:?}", base.display())),
        }
    }
    Ok(out)
}

/// Splits a module into its top-level functions and the rest, and reads its imports and
/// exports. Constructs the scanner cannot follow (default, namespace and dynamic imports,
/// re-exports) are errors.
fn parse_module(path: &Path, src: &str) -> Result<Module, String> {
    let toks = lex(src, &path.display().to_string())?;
    let mut m = Module {
        path: path.to_path_buf(),
        owner: vec![0; toks.len()],
        toks,
        units: vec![Unit {
            name: None,
            exported: false,
            params: Vec::new(),
        }],
        imports: HashMap::new(),
        exports: BTreeSet::new(),
        deps: Vec::new(),
    };
    let mut i = 0;
    while i < m.toks.len() {
        match m.word(i) {
            Some("import") => {
                let start = i;
                if m.punct(i + 1, '(') {
                    return Err(format!("{}: dynamic import() is not followed", m.at(i)));
                }
                let spec = if let Some(Tok::Str(s)) = m.toks.get(i + 1).map(|t| &t.tok) {
                    i += 2;
                    s.clone()
                } else if m.punct(i + 1, '{') {
                    let close = m.closing(i + 1)?;
                    let mut names = Vec::new();
                    let mut j = i + 2;
                    while j < close {
                        let name = m
                            .word(j)
                            .ok_or_else(|| format!("{}: odd import", m.at(j)))?
                            .to_owned();
                        let local = if m.word(j + 1) == Some("as") {
                            j += 2;
                            m.word(j)
                                .ok_or_else(|| format!("{}: odd import", m.at(j)))?
                                .to_owned()
                        } else {
                            name.clone()
                        };
                        names.push((local, name));
                        j += 1;
                        if m.punct(j, ',') {
                            j += 1;
                        }
                    }
                    let Some(Tok::Str(spec)) = m.toks.get(close + 2).map(|t| &t.tok) else {
                        return Err(format!("{}: odd import", m.at(i)));
                    };
                    if m.word(close + 1) != Some("from") {
                        return Err(format!("{}: odd import", m.at(i)));
                    }
                    let spec = spec.clone();
                    let dep = resolve_spec(path, &spec)?;
                    for (local, name) in names {
                        m.imports.insert(local, (dep.clone(), name));
                    }
                    i = close + 3;
                    spec
                } else {
                    return Err(format!(
                        "{}: only `import {{ names }} from` and `import \"...\"` are followed",
                        m.at(i)
                    ));
                };
                m.deps.push(resolve_spec(path, &spec)?);
                if m.punct(i, ';') {
                    i += 1;
                }
                for o in &mut m.owner[start..i] {
                    *o = NOT_CODE;
                }
            }
            Some("export") => {
                let next = m.word(i + 1);
                match next {
                    Some("function" | "async") => {}
                    Some("const" | "let" | "var" | "class") => {
                        if let Some(name) = m.word(i + 2) {
                            m.exports.insert(name.to_owned());
                        }
                    }
                    _ => {
                        return Err(format!(
                            "{}: only `export function|const|let|var|class` is followed",
                            m.at(i)
                        ));
                    }
                }
                i += 1;
            }
            Some("function") => {
                let mut start = i;
                if start > 0 && m.word(start - 1) == Some("async") {
                    start -= 1;
                }
                let exported = start > 0 && m.word(start - 1) == Some("export");
                if exported {
                    start -= 1;
                }
                let Some(name) = m.word(i + 1).map(str::to_owned) else {
                    // A function expression: part of the surrounding code.
                    i += 1;
                    continue;
                };
                if !m.punct(i + 2, '(') {
                    return Err(format!("{}: odd function declaration", m.at(i)));
                }
                let params = m
                    .args(i + 2)?
                    .into_iter()
                    .map(|(s, e)| match m.word(s) {
                        Some(w) if e == s + 1 || m.punct(s + 1, '=') => Some(w.to_owned()),
                        _ => None,
                    })
                    .collect();
                let body = m.closing(i + 2)? + 1;
                if !m.punct(body, '{') {
                    return Err(format!("{}: odd function declaration", m.at(i)));
                }
                let end = m.closing(body)? + 1;
                if exported {
                    m.exports.insert(name.clone());
                }
                m.units.push(Unit {
                    name: Some(name),
                    exported,
                    params,
                });
                let unit = m.units.len() - 1;
                for o in &mut m.owner[start..end] {
                    *o = unit;
                }
                m.owner[i + 1] = NOT_CODE;
                i = end;
            }
            _ => {
                if m.punct(i, '(') || m.punct(i, '[') || m.punct(i, '{') {
                    // Nested code stays with the top-level code; only skip to its end.
                    i = m.closing(i)? + 1;
                } else {
                    i += 1;
                }
            }
        }
    }
    Ok(m)
}

/// A page's module graph and which of its code can run.
struct Page {
    modules: BTreeMap<PathBuf, Module>,
    /// Live (module, unit) pairs.
    live: BTreeSet<(PathBuf, usize)>,
}

/// A reference at token `i` of `m`, if the word there names a function: (module, unit).
fn referent(page: &Page, m: &Module, i: usize) -> Result<Option<(PathBuf, usize)>, String> {
    let Some(w) = m.word(i) else { return Ok(None) };
    if m.owner[i] == NOT_CODE || (i > 0 && m.punct(i - 1, '.')) {
        return Ok(None);
    }
    if let Some(u) = m.unit(w) {
        return Ok(Some((m.path.clone(), u)));
    }
    if let Some((dep, name)) = m.imports.get(w) {
        let d = &page.modules[dep];
        if !d.exports.contains(name) {
            return Err(format!(
                "{}: imports {name} that {} does not export",
                m.at(i),
                dep.display()
            ));
        }
        return Ok(d
            .unit(name)
            .filter(|u| d.units[*u].exported)
            .map(|u| (dep.clone(), u)));
    }
    Ok(None)
}

/// Loads the page's module scripts and their imports, then marks the code that can run:
/// all top-level code, and every function referenced from running code.
fn load_page(
    html_path: &Path,
    read: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Page, String> {
    let html = read(html_path)?;
    let mut entries = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut rest = 0;
    while let Some(p) = lower[rest..].find("<script") {
        let start = rest + p;
        let tag_end = start
            + lower[start..]
                .find('>')
                .ok_or_else(|| format!("{}: unclosed <script>", html_path.display()))?;
        let tag = &html[start..tag_end];
        let close = tag_end
            + lower[tag_end..]
                .find("</script>")
                .ok_or_else(|| format!("{}: no </script>", html_path.display()))?;
        if !html[tag_end + 1..close].trim().is_empty() {
            return Err(format!(
                "{}: inline script code is not scanned",
                html_path.display()
            ));
        }
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            tag.find(&key).map(|s| {
                let v = &tag[s + key.len()..];
                v[..v.find('"').unwrap_or(v.len())].to_owned()
            })
        };
        if attr("type").as_deref() != Some("module") {
            return Err(format!(
                "{}: a script that is not type=\"module\"",
                html_path.display()
            ));
        }
        let src =
            attr("src").ok_or_else(|| format!("{}: a script without src", html_path.display()))?;
        entries.push(resolve_spec(html_path, &format!("./{src}"))?);
        rest = close;
    }
    if entries.is_empty() {
        return Err(format!("{}: no module script", html_path.display()));
    }
    let mut modules = BTreeMap::new();
    let mut todo = entries;
    while let Some(path) = todo.pop() {
        if modules.contains_key(&path) {
            continue;
        }
        let m = parse_module(&path, &read(&path)?)?;
        todo.extend(m.deps.iter().cloned());
        modules.insert(path, m);
    }
    let mut page = Page {
        modules,
        live: BTreeSet::new(),
    };
    let mut todo: Vec<(PathBuf, usize)> = page.modules.keys().map(|p| (p.clone(), 0)).collect();
    while let Some(unit) = todo.pop() {
        if !page.live.insert(unit.clone()) {
            continue;
        }
        let m = &page.modules[&unit.0];
        for i in (0..m.toks.len()).filter(|i| m.owner[*i] == unit.1) {
            if let Some(r) = referent(&page, m, i)? {
                todo.push(r);
            }
        }
    }
    Ok(page)
}

/// The command names the argument tokens `range` of `m` (in unit `unit`) can be: a literal,
/// or a parameter of the unit, followed back to the arguments of every running call of it.
fn names_of(
    page: &Page,
    m: &Module,
    unit: usize,
    range: (usize, usize),
    hops: usize,
) -> Result<BTreeSet<String>, String> {
    let (s, e) = range;
    if hops > 16 {
        return Err(format!(
            "{}: command name passes through too many calls",
            m.at(s)
        ));
    }
    let unreadable = || {
        format!(
            "{}: cannot tell which command this calls; pass a string literal or a parameter of a function called with literals",
            m.at(s)
        )
    };
    if e != s + 1 {
        return Err(unreadable());
    }
    match &m.toks[s].tok {
        Tok::Str(name) => Ok(BTreeSet::from([name.clone()])),
        Tok::Word(w) => {
            let index = m.units[unit]
                .params
                .iter()
                .position(|p| p.as_deref() == Some(w))
                .ok_or_else(unreadable)?;
            let target = (m.path.clone(), unit);
            let mut names = BTreeSet::new();
            for (caller, cm) in &page.modules {
                for i in 0..cm.toks.len() {
                    let cu = cm.owner[i];
                    if cu == NOT_CODE || !page.live.contains(&(caller.clone(), cu)) {
                        continue;
                    }
                    if referent(page, cm, i)?.as_ref() != Some(&target) {
                        continue;
                    }
                    if !cm.punct(i + 1, '(') {
                        return Err(format!(
                            "{}: {w}'s function is passed as a value; its callers cannot be followed",
                            cm.at(i)
                        ));
                    }
                    let args = cm.args(i + 1)?;
                    let arg = args
                        .get(index)
                        .copied()
                        .ok_or_else(|| format!("{}: call without argument `{w}`", cm.at(i)))?;
                    names.extend(names_of(page, cm, cu, arg, hops + 1)?);
                }
            }
            Ok(names)
        }
        _ => Err(unreadable()),
    }
}

/// Every IPC command the page can call: each `.invoke(name, ...)` in running code, with
/// `name` followed back to literals. Any other use of a function named `invoke` is an error,
/// so no way of reaching the IPC goes unseen.
fn page_commands(
    html_path: &Path,
    read: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<BTreeSet<String>, String> {
    let page = load_page(html_path, read)?;
    let mut commands = BTreeSet::new();
    for (path, m) in &page.modules {
        for i in 0..m.toks.len() {
            if m.word(i) != Some("invoke") || m.owner[i] == NOT_CODE {
                continue;
            }
            let member = i > 0 && m.punct(i - 1, '.');
            if !member {
                // A call of a wrapper named invoke: counted where the wrapper reaches the IPC.
                if referent(&page, m, i)?.is_none() {
                    return Err(format!("{}: `invoke` that is no known function", m.at(i)));
                }
                continue;
            }
            if !m.punct(i + 1, '(') {
                // `typeof x.invoke` (the bridge's presence check) is the one other use.
                if i >= 3 && m.word(i - 3) == Some("typeof") {
                    continue;
                }
                return Err(format!("{}: `.invoke` used other than as a call", m.at(i)));
            }
            let unit = m.owner[i];
            if !page.live.contains(&(path.clone(), unit)) {
                continue;
            }
            let first = m
                .args(i + 1)?
                .first()
                .copied()
                .ok_or_else(|| format!("{}: invoke() without a command", m.at(i)))?;
            commands.extend(names_of(&page, m, unit, first, 0)?);
        }
    }
    Ok(commands)
}

/// The permission a window needs for a command, as tauri-build names it.
fn permission(command: &str) -> String {
    match command
        .strip_prefix("plugin:")
        .and_then(|c| c.split_once('|'))
    {
        Some((plugin, cmd)) => {
            let prefix = if CORE_PLUGINS.contains(&plugin) {
                "core:"
            } else {
                ""
            };
            format!("{prefix}{plugin}:allow-{}", cmd.replace('_', "-"))
        }
        None => format!("allow-{}", command.replace('_', "-")),
    }
}

fn src_tauri() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The app commands `build.rs` gives permissions to.
fn app_commands() -> BTreeSet<String> {
    let build = read_file(&src_tauri().join("build.rs")).unwrap();
    let list = &build[build
        .find(".commands(&[")
        .expect("build.rs lists the commands")..];
    let list = &list[..list.find("])").unwrap()];
    lex(list, "build.rs")
        .unwrap()
        .into_iter()
        .filter_map(|t| match t.tok {
            Tok::Str(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// Capability files: identifier → (windows, permissions).
fn capabilities() -> BTreeMap<String, (Vec<String>, BTreeSet<String>)> {
    let dir = src_tauri().join("capabilities");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&read_file(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let strings = |key: &str| -> Vec<String> {
            v[key]
                .as_array()
                .unwrap_or_else(|| panic!("{}: no {key} list", path.display()))
                .iter()
                .map(|p| {
                    p.as_str()
                        .unwrap_or_else(|| {
                            panic!("{}: {key}: {p} is not a plain name", path.display())
                        })
                        .to_owned()
                })
                .collect()
        };
        let permissions = strings("permissions");
        let set: BTreeSet<String> = permissions.iter().cloned().collect();
        assert_eq!(
            set.len(),
            permissions.len(),
            "{}: a permission twice",
            path.display()
        );
        assert!(
            v.get("remote").is_none() && v.get("webviews").is_none(),
            "{}: grants beyond the window's own page",
            path.display()
        );
        let id = v["identifier"].as_str().unwrap().to_owned();
        assert!(
            out.insert(id, (strings("windows"), set)).is_none(),
            "{}: identifier twice",
            path.display()
        );
    }
    out
}

#[test]
fn each_window_is_granted_exactly_the_commands_its_page_calls() {
    let caps = capabilities();
    let conf: Value =
        serde_json::from_str(&read_file(&src_tauri().join("tauri.conf.json")).unwrap()).unwrap();
    let enabled: BTreeSet<String> = conf["app"]["security"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        enabled,
        caps.keys().cloned().collect(),
        "tauri.conf.json enables every capability file, and only those"
    );
    let known = app_commands();
    let ui = src_tauri().join("..").join("ui");
    let mut problems = Vec::new();
    for kind in WindowKind::ALL {
        let mine: Vec<_> = caps
            .iter()
            .filter(|(_, (windows, _))| windows.iter().any(|w| w == kind.label()))
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "one capability for the {} window: {mine:?}",
            kind.label()
        );
        let (id, (windows, granted)) = mine[0];
        assert_eq!(
            windows,
            &[kind.label().to_owned()],
            "capability {id} is for one window"
        );
        let used = page_commands(&ui.join(kind.page()), &read_file)
            .unwrap_or_else(|e| panic!("scanning {}: {e}", kind.page()));
        for c in &used {
            if !c.starts_with("plugin:") {
                assert!(
                    known.contains(c),
                    "{} calls {c}, which build.rs does not list",
                    kind.page()
                );
            }
        }
        let needed: BTreeSet<String> = used.iter().map(|c| permission(c)).collect();
        let unused: Vec<_> = granted.difference(&needed).collect();
        let missing: Vec<_> = needed.difference(granted).collect();
        if !unused.is_empty() || !missing.is_empty() {
            problems.push(format!(
                "{id} ({}): granted but not used {unused:?}; used but not granted {missing:?} (the page calls {used:?})",
                kind.page()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs the scanner on in-memory files.
fn scan(files: &[(&str, &str)]) -> Result<BTreeSet<String>, String> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), (*s).to_owned()))
        .collect();
    page_commands(Path::new("ui/page.html"), &|p: &Path| {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| format!("{}: no such file", p.display()))
    })
}

const HTML: &str = r#"<html><head><script type="module" src="js/page.js"></script></head></html>"#;

const BRIDGE: &str = r#"
function internals() { return window.__TAURI_INTERNALS__; }
export function invoke(cmd, args = {}) { return internals().invoke(cmd, args); }
export async function listen(event, handler) {
  const t = internals();
  const id = await t.invoke("plugin:event|listen", { event, handler: 1 });
  return () => t.invoke("plugin:event|unlisten", { event, id });
}
export const EVENTS = { a: "x" };
"#;

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_scanner_follows_wrappers_and_imports_and_skips_unreachable_code() {
    let page = r#"
import { invoke as call } from "./tauri.js";
import { helper } from "./lib/helper.js";
const re = /\{(\w+)\}/g; // braces in a regex are not code
const s = `a ${ "}" } b`;
function action(cmd, ok) { return async () => { await call(cmd); }; }
function unused() { return call("never"); }
async function init() {
  document.body.addEventListener("click", action("send_test", null));
  await call("get_status");
  helper();
}
init();
"#;
    let helper = r#"
import { invoke } from "../tauri.js";
export function helper() { return invoke("from_helper", {}); }
export function other() { return invoke("not_called"); }
"#;
    let got = scan(&[
        ("ui/page.html", HTML),
        ("ui/js/page.js", page),
        ("ui/js/tauri.js", BRIDGE),
        ("ui/js/lib/helper.js", helper),
    ])
    .unwrap();
    assert_eq!(got, names(&["from_helper", "get_status", "send_test"]));
    // A page that listens needs the event commands; the IPC's own calls count only then.
    let got = scan(&[
        ("ui/page.html", HTML),
        (
            "ui/js/page.js",
            r#"import { listen, EVENTS } from "./tauri.js"; listen(EVENTS.a, () => {});"#,
        ),
        ("ui/js/tauri.js", BRIDGE),
    ])
    .unwrap();
    assert_eq!(
        got,
        names(&["plugin:event|listen", "plugin:event|unlisten"])
    );
    assert_eq!(
        [
            "plugin:event|listen",
            "plugin:event|unlisten",
            "get_status",
            "send_test_notification",
            "plugin:my-plugin|do_it",
        ]
        .map(permission),
        [
            "core:event:allow-listen",
            "core:event:allow-unlisten",
            "allow-get-status",
            "allow-send-test-notification",
            "my-plugin:allow-do-it",
        ]
    );
}

#[test]
fn the_scanner_refuses_what_it_cannot_follow() {
    let refused = |page: &str| {
        let e = scan(&[
            ("ui/page.html", HTML),
            ("ui/js/page.js", page),
            ("ui/js/tauri.js", BRIDGE),
        ])
        .expect_err(page);
        assert!(e.contains("ui/js/page.js"), "{e}");
        e
    };
    // A computed command name.
    let e = refused(r#"import { invoke } from "./tauri.js"; const c = "a"; invoke(c);"#);
    assert!(e.contains("cannot tell which command"), "{e}");
    refused(r#"import { invoke } from "./tauri.js"; invoke("get_" + "status");"#);
    refused(r#"import { invoke } from "./tauri.js"; invoke(`get_${"status"}`);"#);
    // The wrapper passed around as a value.
    let e = refused(r#"import { invoke } from "./tauri.js"; ["a"].forEach(invoke);"#);
    assert!(e.contains("passed as a value"), "{e}");
    // The IPC reached directly, or aliased.
    refused(r#"const f = window.__TAURI_INTERNALS__.invoke; f("x");"#);
    refused(r#"window.__TAURI_INTERNALS__.invoke(name);"#);
    // Imports the scanner does not follow.
    refused(r#"import * as tauri from "./tauri.js"; tauri.invoke("x");"#);
    refused(r#"import("./tauri.js").then((m) => m.invoke("x"));"#);
    refused(r#"import { nope } from "./tauri.js"; nope();"#);
    // And inline scripts in the page.
    let e = scan(&[("ui/page.html", "<script>invoke('x')</script>")]).unwrap_err();
    assert!(e.contains("type=\"module\"") || e.contains("inline"), "{e}");
}

#[test]
fn build_rs_permits_exactly_the_commands_the_dispatch_serves() {
    // A command the dispatch serves but build.rs omits could never be granted; one
    // build.rs lists but the dispatch lacks would be granted and then fail.
    let served: BTreeSet<String> = taskbell_app::dispatch::COMMANDS
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(app_commands(), served);
}
