use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use thiserror::Error;

/// Why a route dictionary was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteDictionaryError {
    /// A route appears twice (after trimming white space).
    #[error("route {0:?} appears twice in the dictionary")]
    DuplicateRoute(String),
    /// A code is given to two routes.
    #[error("route code {0} is given to two routes")]
    DuplicateCode(u16),
    /// A route is empty (after trimming white space).
    #[error("the dictionary holds an empty route")]
    EmptyRoute,
    /// More routes than 2-byte codes.
    #[error("more than 65536 routes")]
    TooManyRoutes,
}

/// Route compression dictionary: route <-> 2-byte code.
///
/// A server announces it in the handshake (`sys.dict`); both sides then send
/// the code instead of the route string for the routes it holds. It is a
/// value owned by an app or a client (cheap to clone), never a global.
///
/// ```
/// use pitaya_protocol::codec::RouteDictionary;
///
/// let dict = RouteDictionary::from_routes(["room.room.join", "onMessage"]).unwrap();
/// assert_eq!(dict.code("onMessage"), Some(2));
/// assert_eq!(dict.route(1), Some("room.room.join"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct RouteDictionary {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_route: HashMap<String, u16>,
    by_code: HashMap<u16, String>,
}

impl RouteDictionary {
    /// A dictionary from `(route, code)` pairs. Routes are trimmed; a
    /// duplicate route or code is refused, as Pitaya does.
    pub fn new<R: AsRef<str>>(
        entries: impl IntoIterator<Item = (R, u16)>,
    ) -> Result<Self, RouteDictionaryError> {
        let mut inner = Inner::default();
        for (route, code) in entries {
            let route = route.as_ref().trim();
            if route.is_empty() {
                return Err(RouteDictionaryError::EmptyRoute);
            }
            if inner.by_route.contains_key(route) {
                return Err(RouteDictionaryError::DuplicateRoute(route.to_owned()));
            }
            if inner.by_code.contains_key(&code) {
                return Err(RouteDictionaryError::DuplicateCode(code));
            }
            inner.by_route.insert(route.to_owned(), code);
            inner.by_code.insert(code, route.to_owned());
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// A dictionary giving codes 1, 2, 3... to `routes` in order.
    pub fn from_routes<R: AsRef<str>>(
        routes: impl IntoIterator<Item = R>,
    ) -> Result<Self, RouteDictionaryError> {
        let mut entries = Vec::new();
        for (index, route) in routes.into_iter().enumerate() {
            let code = u16::try_from(index + 1).map_err(|_| RouteDictionaryError::TooManyRoutes)?;
            entries.push((route, code));
        }
        Self::new(entries)
    }

    /// The code of `route`, if it has one.
    pub fn code(&self, route: &str) -> Option<u16> {
        self.inner.by_route.get(route).copied()
    }

    /// The route of `code`, if any.
    pub fn route(&self, code: u16) -> Option<&str> {
        self.inner.by_code.get(&code).map(String::as_str)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.inner.by_route.len()
    }

    /// Whether the dictionary is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.by_route.is_empty()
    }

    /// The dictionary sorted by route, as the handshake's `sys.dict` shows it.
    pub fn to_map(&self) -> BTreeMap<String, u16> {
        self.inner
            .by_route
            .iter()
            .map(|(route, &code)| (route.clone(), code))
            .collect()
    }
}

impl PartialEq for RouteDictionary {
    fn eq(&self, other: &Self) -> bool {
        self.inner.by_route == other.inner.by_route
    }
}

impl Eq for RouteDictionary {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_refuses_duplicates() {
        let dict = RouteDictionary::new([(" a.b ", 3)]).unwrap();
        assert_eq!(dict.code("a.b"), Some(3));
        assert_eq!(
            RouteDictionary::new([("a.b", 1), ("a.b ", 2)]).unwrap_err(),
            RouteDictionaryError::DuplicateRoute("a.b".into())
        );
        assert_eq!(
            RouteDictionary::new([("a.b", 1), ("c.d", 1)]).unwrap_err(),
            RouteDictionaryError::DuplicateCode(1)
        );
        assert_eq!(
            RouteDictionary::new([("  ", 1)]).unwrap_err(),
            RouteDictionaryError::EmptyRoute
        );
    }

    #[test]
    fn map_is_sorted_by_route() {
        let dict = RouteDictionary::new([("z", 1), ("a", 2)]).unwrap();
        let keys: Vec<_> = dict.to_map().into_keys().collect();
        assert_eq!(keys, ["a", "z"]);
        assert_eq!(dict.len(), 2);
        assert!(!dict.is_empty());
        assert!(RouteDictionary::default().is_empty());
    }
}
