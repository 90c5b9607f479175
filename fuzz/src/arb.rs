//! Arbitrary (bounded) microVM configs for the `validate` and `vm_macro`
//! targets.
//!
//! Values are drawn mostly from small vocabularies (path segments `a`, `b`,
//! `ab`, `.`, `..`; a few ports; a few names) so that overlaps, duplicates
//! and `..` escapes are common, with a raw-string escape hatch for anything
//! else. Lists are cut to [`MAX_LIST`] elements; [`Pad`] grows one list to
//! its limit (or one past it) to reach the size checks.

use arbitrary::Arbitrary;
use monocore::config::{AllowEntry, EnvPair, PathPair, PortPair, limits};
use monocore::vm::{LinuxRlimit, LinuxRlimitResource, MicroVmConfig};

/// The most elements a generated list has (before [`Pad`]).
pub const MAX_LIST: usize = 12;

/// One path segment.
#[derive(Arbitrary, Debug, Clone)]
pub enum Seg {
    A,
    B,
    Ab,
    Dot,
    DotDot,
    Empty,
    Colon,
    Raw(String),
}

impl Seg {
    fn text(&self) -> &str {
        match self {
            Seg::A => "a",
            Seg::B => "b",
            Seg::Ab => "ab",
            Seg::Dot => ".",
            Seg::DotDot => "..",
            Seg::Empty => "",
            Seg::Colon => "x:y",
            Seg::Raw(s) => s,
        }
    }
}

/// A path: `/`-joined segments, optionally absolute and with a trailing `/`.
#[derive(Arbitrary, Debug, Clone)]
pub struct Path {
    pub absolute: bool,
    pub segs: Vec<Seg>,
    pub trailing_slash: bool,
}

impl Path {
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.absolute {
            out.push('/');
        }
        let segs: Vec<&str> = self.segs.iter().take(6).map(Seg::text).collect();
        out.push_str(&segs.join("/"));
        if self.trailing_slash {
            out.push('/');
        }
        out
    }
}

/// A string value: mostly a word from a small table, sometimes anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Text {
    Word(u8),
    Path(Path),
    Raw(String),
}

const WORDS: [&str; 12] = [
    "",
    "hello",
    "A",
    "PATH",
    "x=y",
    "/bin/echo",
    "with space",
    "tab\there",
    "new\nline",
    "héllo",
    "~!@#$%^&*()",
    "\0",
];

impl Text {
    pub fn render(&self) -> String {
        match self {
            Text::Word(i) => WORDS[usize::from(*i) % WORDS.len()].to_owned(),
            Text::Path(p) => p.render(),
            Text::Raw(s) => s.clone(),
        }
    }
}

/// A port: usually one of a few small ones, so duplicates happen.
#[derive(Arbitrary, Debug, Clone)]
pub enum Port {
    Small(u8),
    Any(u16),
}

impl Port {
    pub fn value(&self) -> u16 {
        match self {
            Port::Small(n) => u16::from(*n % 4),
            Port::Any(n) => *n,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct PortMap {
    pub host: Port,
    pub guest: Port,
    pub same: bool,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Dir {
    pub host: Text,
    pub guest: Path,
    pub same: bool,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Env {
    pub name: Text,
    pub value: Text,
}

/// An rlimit value: small, any, or the maximum.
#[derive(Arbitrary, Debug, Clone)]
pub enum Limit {
    Small(u8),
    Any(u64),
    Max,
}

impl Limit {
    pub fn value(&self) -> u64 {
        match self {
            Limit::Small(n) => u64::from(*n % 4),
            Limit::Any(n) => *n,
            Limit::Max => u64::MAX,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Rlimit {
    pub resource: u8,
    pub soft: Limit,
    pub hard: Limit,
}

impl Rlimit {
    pub fn resource(&self) -> LinuxRlimitResource {
        LinuxRlimitResource::ALL[usize::from(self.resource) % 16]
    }
}

/// An allow-list entry's host: a few that overlap in every way (one name
/// in two spellings, a network and an address in it, the host's loopback),
/// or any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum AllowHost {
    Word(u8),
    Raw(String),
}

const ALLOW_HOSTS: [&str; 8] = [
    "127.0.0.1",
    "pypi.org",
    "PyPI.org.",
    "10.1.0.0/16",
    "10.1.2.3",
    "1.2.3.4",
    "10.0.2.2",
    "[::1]",
];

/// An allow-list entry: `HOST:PORT`, with a port that often repeats.
#[derive(Arbitrary, Debug, Clone)]
pub struct Allow {
    pub host: AllowHost,
    pub port: Port,
}

impl Allow {
    pub fn render(&self) -> String {
        let host = match &self.host {
            AllowHost::Word(i) => ALLOW_HOSTS[usize::from(*i) % ALLOW_HOSTS.len()].to_owned(),
            AllowHost::Raw(s) => s.clone(),
        };
        format!("{host}:{}", self.port.value())
    }
}

/// Which list to grow to its limit, and whether one past it. Only `list`
/// values 0–5 pad (about 2% of inputs): a padded config costs thousands of
/// times more to check, and would otherwise dominate the run.
#[derive(Arbitrary, Debug, Clone)]
pub struct Pad {
    pub list: u8,
    pub over: bool,
}

/// A whole config.
#[derive(Arbitrary, Debug, Clone)]
pub struct Config {
    pub vcpus: u8,
    pub ram: u32,
    pub ram_zero: bool,
    pub exec: Option<Text>,
    pub args: Vec<Text>,
    pub workdir: Option<Path>,
    pub env: Vec<Env>,
    pub dirs: Vec<Dir>,
    pub ports: Vec<PortMap>,
    pub rlimits: Vec<Rlimit>,
    pub console: Option<Text>,
    pub pad: Option<Pad>,
    pub net: bool,
    pub tsi: bool,
    pub allow: Vec<Allow>,
}

impl Config {
    /// The `MicroVmConfig` this input stands for.
    pub fn to_config(&self) -> MicroVmConfig {
        let ram = if self.ram_zero { 0 } else { self.ram };
        let mut config = MicroVmConfig::new("/nonexistent/rootfs", ram);
        config.num_vcpus = self.vcpus;
        config.exec_path = self.exec.as_ref().map(|t| t.render().into());
        config.args = self.args.iter().take(MAX_LIST).map(Text::render).collect();
        config.workdir_path = self.workdir.as_ref().map(|p| p.render().into());
        config.env = self
            .env
            .iter()
            .take(MAX_LIST)
            .map(|e| EnvPair::new(e.name.render(), e.value.render()))
            .collect();
        config.mapped_dirs = self
            .dirs
            .iter()
            .take(MAX_LIST)
            .map(|d| {
                let guest = d.guest.render();
                if d.same {
                    PathPair::with_same(guest.into())
                } else {
                    PathPair::with_distinct(d.host.render().into(), guest.into())
                }
            })
            .collect();
        config.port_map = self
            .ports
            .iter()
            .take(MAX_LIST)
            .map(|p| {
                if p.same {
                    PortPair::with_same(p.host.value())
                } else {
                    PortPair::with_distinct(p.host.value(), p.guest.value())
                }
            })
            .collect();
        config.rlimits = self
            .rlimits
            .iter()
            .take(MAX_LIST)
            .map(|r| LinuxRlimit::new(r.resource(), r.soft.value(), r.hard.value()))
            .collect();
        config.console_output = self.console.as_ref().map(|t| t.render().into());
        config.net = self.net;
        config.local_only = !self.tsi;
        // Entries that do not parse are no entries: the rules see parsed
        // ones only (the `vm_macro` target covers the parse).
        config.allow = self
            .allow
            .iter()
            .take(MAX_LIST)
            .filter_map(|a| a.render().parse::<AllowEntry>().ok())
            .collect();
        if let Some(pad) = &self.pad {
            pad_list(&mut config, pad);
        }
        config
    }
}

/// Grows one list to its limit (or one past it) with valid, distinct
/// elements, so only the size rule (and the list's own elements) decide.
fn pad_list(config: &mut MicroVmConfig, pad: &Pad) {
    let extra = usize::from(pad.over);
    match pad.list {
        0 => {
            let n = limits::max_mapped_dirs(false) + extra;
            let mut i = 0;
            while config.mapped_dirs.len() < n {
                config
                    .mapped_dirs
                    .push(PathPair::with_same(format!("/pad/{i}").into()));
                i += 1;
            }
        }
        1 => {
            let n = limits::MAX_PORT_MAPPINGS + extra;
            let mut port = 10_000u16;
            while config.port_map.len() < n {
                config.port_map.push(PortPair::with_same(port));
                port += 1;
            }
        }
        2 => {
            // Each resource once; a 17th repeats one.
            let n = limits::MAX_RLIMITS + extra;
            let mut i = 0;
            while config.rlimits.len() < n {
                let resource = LinuxRlimitResource::ALL[i % 16];
                config.rlimits.push(LinuxRlimit::new(resource, 1, 2));
                i += 1;
            }
        }
        3 => {
            let n = limits::MAX_ARGS + extra;
            config.args.resize(n, "arg".to_owned());
            if config.exec_path.is_none() {
                config.exec_path = Some("/bin/true".into());
            }
        }
        4 => {
            let n = limits::MAX_ENV_VARS + extra;
            config.env.resize(n, EnvPair::new("PAD", "1"));
        }
        5 => {
            // Each entry once: one port apart.
            let n = limits::MAX_ALLOW_ENTRIES + extra;
            let mut port = 10_000u16;
            while config.allow.len() < n {
                if let Ok(entry) = format!("127.0.0.1:{port}").parse::<AllowEntry>() {
                    config.allow.push(entry);
                }
                port += 1;
            }
        }
        _ => {}
    }
}

// ---- `vm!` input made of literals only ---------------------------------------

/// A string element of a list literal: usually rendered from structured
/// parts (so that it often parses), sometimes any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum Elem<T> {
    Parts(T),
    Text(Text),
}

impl<T> Elem<T> {
    fn render(&self, parts: impl Fn(&T) -> String) -> String {
        match self {
            Elem::Parts(t) => parts(t),
            Elem::Text(t) => t.render(),
        }
    }
}

/// An integer literal: small, any `u64`, or past `u64` (the macro reads
/// integer literals as `u128`).
#[derive(Arbitrary, Debug, Clone)]
pub enum IntLit {
    Small(u8),
    Any(u64),
    Huge(u64),
}

impl IntLit {
    pub fn value(&self) -> u128 {
        match self {
            IntLit::Small(n) => u128::from(*n % 4),
            IntLit::Any(n) => u128::from(*n),
            IntLit::Huge(n) => u128::from(u64::MAX) + u128::from(*n),
        }
    }
}

const LEVELS: [&str; 7] = ["Off", "Error", "Warn", "Info", "Debug", "Trace", "Loud"];

/// A `vm!` input whose every value is a literal.
#[derive(Arbitrary, Debug, Clone)]
pub struct MacroInput {
    pub ram: IntLit,
    pub vcpus: Option<IntLit>,
    pub exec: Option<Text>,
    pub args: Option<Vec<Text>>,
    pub env: Option<Vec<Elem<Env>>>,
    pub workdir: Option<Path>,
    pub mapped_dirs: Option<Vec<Elem<Dir>>>,
    pub port_map: Option<Vec<Elem<PortMap>>>,
    pub rlimits: Option<Vec<Elem<Rlimit>>>,
    pub console: Option<Text>,
    pub ip: Option<Elem<[u8; 4]>>,
    pub local_only: Option<bool>,
    pub log_level: Option<u8>,
    pub net: Option<bool>,
    pub allow: Option<Vec<Elem<Allow>>>,
}

/// The `vm!` input text and the string values it holds, ready to be turned
/// into the equivalent run-time config.
pub struct Rendered {
    pub text: String,
    pub ram: u128,
    pub vcpus: Option<u128>,
    pub exec: Option<String>,
    pub args: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub mapped_dirs: Option<Vec<String>>,
    pub port_map: Option<Vec<String>>,
    pub rlimits: Option<Vec<String>>,
    pub console: Option<String>,
    pub ip: Option<String>,
    pub local_only: Option<bool>,
    pub log_level: Option<&'static str>,
    pub net: Option<bool>,
    pub allow: Option<Vec<String>>,
}

fn list_lit(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl MacroInput {
    pub fn render(&self) -> Rendered {
        let take = |v: &Option<Vec<Text>>| {
            v.as_ref().map(|v| {
                v.iter()
                    .take(MAX_LIST)
                    .map(Text::render)
                    .collect::<Vec<_>>()
            })
        };
        fn elems<T>(v: &Option<Vec<Elem<T>>>, parts: impl Fn(&T) -> String) -> Option<Vec<String>> {
            v.as_ref()
                .map(|v| v.iter().take(MAX_LIST).map(|e| e.render(&parts)).collect())
        }
        let r = Rendered {
            text: String::new(),
            ram: self.ram.value(),
            vcpus: self.vcpus.as_ref().map(IntLit::value),
            exec: self.exec.as_ref().map(Text::render),
            args: take(&self.args),
            env: elems(&self.env, |e| {
                format!("{}={}", e.name.render(), e.value.render())
            }),
            workdir: self.workdir.as_ref().map(Path::render),
            mapped_dirs: elems(&self.mapped_dirs, |d| {
                if d.same {
                    d.guest.render()
                } else {
                    format!("{}:{}", d.host.render(), d.guest.render())
                }
            }),
            port_map: elems(&self.port_map, |p| {
                if p.same {
                    p.host.value().to_string()
                } else {
                    format!("{}:{}", p.host.value(), p.guest.value())
                }
            }),
            rlimits: elems(&self.rlimits, |r| {
                let resource = if r.resource & 0x80 == 0 {
                    r.resource().to_string()
                } else {
                    r.resource().as_int().to_string()
                };
                format!("{resource}={}:{}", r.soft.value(), r.hard.value())
            }),
            console: self.console.as_ref().map(Text::render),
            ip: self
                .ip
                .as_ref()
                .map(|ip| ip.render(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]))),
            local_only: self.local_only,
            log_level: self
                .log_level
                .map(|i| LEVELS[usize::from(i) % LEVELS.len()]),
            net: self.net,
            allow: elems(&self.allow, Allow::render),
        };
        let mut fields = vec!["root: \"./rootfs\"".to_owned(), format!("ram: {}", r.ram)];
        let mut add = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                fields.push(format!("{key}: {v}"));
            }
        };
        add("vcpus", r.vcpus.map(|n| n.to_string()));
        add("exec", r.exec.as_ref().map(|s| format!("{s:?}")));
        add("args", r.args.as_deref().map(list_lit));
        add("env", r.env.as_deref().map(list_lit));
        add("workdir", r.workdir.as_ref().map(|s| format!("{s:?}")));
        add("mapped_dirs", r.mapped_dirs.as_deref().map(list_lit));
        add("port_map", r.port_map.as_deref().map(list_lit));
        add("rlimits", r.rlimits.as_deref().map(list_lit));
        add("console", r.console.as_ref().map(|s| format!("{s:?}")));
        add("ip", r.ip.as_ref().map(|s| format!("{s:?}")));
        add("local_only", r.local_only.map(|b| b.to_string()));
        add("log_level", r.log_level.map(str::to_owned));
        add("net", r.net.map(|b| b.to_string()));
        add("allow", r.allow.as_deref().map(list_lit));
        Rendered {
            text: fields.join(", "),
            ..r
        }
    }
}

impl Rendered {
    /// The run-time config the same values give when each string is parsed
    /// with its type's `FromStr` (as the TOML loader does), or `None` if a
    /// value does not fit or does not parse.
    pub fn to_config(&self) -> Option<MicroVmConfig> {
        let mut config = MicroVmConfig::new("./rootfs", u32::try_from(self.ram).ok()?);
        if let Some(v) = self.vcpus {
            config.num_vcpus = u8::try_from(v).ok()?;
        }
        config.exec_path = self.exec.as_ref().map(|s| s.as_str().into());
        config.args = self.args.clone().unwrap_or_default();
        fn parse_all<T: std::str::FromStr>(v: &Option<Vec<String>>) -> Option<Vec<T>> {
            v.iter().flatten().map(|s| s.parse().ok()).collect()
        }
        config.env = parse_all(&self.env)?;
        config.workdir_path = self.workdir.as_ref().map(|s| s.as_str().into());
        config.mapped_dirs = parse_all(&self.mapped_dirs)?;
        config.port_map = parse_all(&self.port_map)?;
        config.rlimits = parse_all(&self.rlimits)?;
        config.console_output = self.console.as_ref().map(|s| s.as_str().into());
        if let Some(ip) = &self.ip {
            config.assigned_ip = Some(ip.parse().ok()?);
        }
        if let Some(b) = self.local_only {
            config.local_only = b;
        }
        if let Some(level) = self.log_level {
            config.log_level = level.parse().ok()?;
        }
        if let Some(b) = self.net {
            config.net = b;
        }
        config.allow = parse_all(&self.allow)?;
        Some(config)
    }
}
