//! Where in the OCI runtime spec a problem is: a structured path
//! (`linux.namespaces[4].path`), never a message to search.

use std::fmt;

/// One step into the spec: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A key of an object.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// A path into `config.json`, from its top-level object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecPath(Vec<Segment>);

impl SpecPath {
    /// The top-level object.
    pub fn root() -> Self {
        Self::default()
    }

    /// The path of `key` inside this object.
    pub fn key(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// The path of element `index` of this array.
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for SpecPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(the spec)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Parses the display form back, for tests (`a.b[2].c`).
#[cfg(test)]
pub fn parse(text: &str) -> SpecPath {
    let mut path = SpecPath::root();
    for part in text.split('.') {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        path = path.key(key);
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            path = path.index(index.trim_end_matches(']').parse().unwrap_or(usize::MAX));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_with_dots_and_indices_in_brackets() {
        let path = SpecPath::root()
            .key("linux")
            .key("namespaces")
            .index(4)
            .key("path");
        assert_eq!(path.to_string(), "linux.namespaces[4].path");
        assert_eq!(
            path.segments(),
            [
                Segment::Key("linux".into()),
                Segment::Key("namespaces".into()),
                Segment::Index(4),
                Segment::Key("path".into()),
            ]
        );
        assert_eq!(parse("linux.namespaces[4].path"), path);
        assert_eq!(SpecPath::root().to_string(), "(the spec)");
    }
}
