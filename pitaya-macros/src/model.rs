//! The validated model of a component: what `expand` generates from.
//!
//! Building the model checks everything the macro can check without type
//! information and records **every** problem in an [`Errors`] accumulator,
//! so the user sees all of them in one build. Type errors (a wrong extractor,
//! a payload that is not `Deserialize`) are left to the compiler, which
//! reports them at the user's argument through the spans `expand` keeps.

use std::collections::HashMap;
use std::fmt::Display;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, GenericParam, Generics, ItemImpl, LitStr, Pat,
    PathArguments, ReceiverKind, ReturnType, Safety, Signature, Type, Visibility,
};

use crate::parse::{AttrKind, ComponentArgs, RouteMethod};

/// Collects every error found while parsing and validating, to report them
/// all at once.
#[derive(Default)]
pub(crate) struct Errors {
    list: Vec<syn::Error>,
}

impl Errors {
    /// Records an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.list.push(error);
    }

    /// Records an error at `span`.
    pub(crate) fn error(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records an error covering `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many errors were recorded.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// One `compile_error!` per recorded error.
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.list.iter().map(syn::Error::to_compile_error).collect()
    }
}

/// A component: one inherent impl block and its routes.
pub(crate) struct Component {
    /// Path of the facade crate (`::pitaya` unless `crate = "..."`).
    pub(crate) krate: TokenStream,
    /// The type the impl block is for.
    pub(crate) self_ty: Type,
    /// The impl block's generics.
    pub(crate) generics: Generics,
    /// `Component::NAME`.
    pub(crate) name: String,
    /// What the handlers' payloads and replies are (`serializer = "..."`).
    pub(crate) serializer: Wire,
    /// `Component::PAYLOAD`.
    pub(crate) payload: PayloadFormat,
    /// The typed client for the remotes, if there is any remote.
    pub(crate) stub: Option<Stub>,
    /// Every handler and remote, in source order.
    pub(crate) routes: Vec<Route>,
}

/// How a component's handlers encode payloads and replies (`serializer =
/// "..."`). Remotes always carry protobuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    /// serde types, with the app's JSON or MessagePack serializer (the
    /// default).
    Serde,
    /// prost messages, with the protobuf serializer.
    Protobuf,
}

impl Wire {
    const VALUES: &'static str =
        "\"serde\" (JSON or MessagePack, the default) or \"protobuf\" (prost messages)";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "serde" => Some(Self::Serde),
            "protobuf" => Some(Self::Protobuf),
            _ => None,
        }
    }
}

/// The generated `Component::PAYLOAD` (`pitaya::handler::PayloadFormat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayloadFormat {
    /// serde handlers.
    Serde,
    /// prost handlers.
    Protobuf,
    /// Only raw `Bytes` in and out, notifies and remotes: any serializer.
    Any,
}

impl PayloadFormat {
    /// The variant's name.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Serde => "Serde",
            Self::Protobuf => "Protobuf",
            Self::Any => "Any",
        }
    }
}

/// The generated client struct for a component's remotes.
pub(crate) struct Stub {
    /// `RoomRemote`.
    pub(crate) ident: Ident,
    /// Visibility of the struct and its methods.
    pub(crate) vis: Visibility,
    /// The component type's name, for its docs.
    pub(crate) component: String,
}

/// One handler or remote.
pub(crate) struct Route {
    /// The Rust method.
    pub(crate) ident: Ident,
    /// The route's method name (`join` in `room.room.join`).
    pub(crate) method: String,
    /// What the glue does with the result.
    pub(crate) kind: RouteKind,
    /// The arguments after `&self`, in order.
    pub(crate) args: Vec<Arg>,
    /// The return type.
    pub(crate) output: Output,
    /// The method's doc comments, for the client stub.
    pub(crate) docs: Vec<Attribute>,
    /// The method's `#[cfg]`s, repeated on everything generated for it.
    pub(crate) cfgs: Vec<Attribute>,
}

/// What kind of route a method is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteKind {
    /// `#[handler]` returning a value.
    Request,
    /// `#[handler]` returning `()`.
    Notify,
    /// `#[remote]`.
    Remote,
}

/// An argument after `&self`.
pub(crate) enum Arg {
    /// `&T`: extracted with `FromRequest` (or `FromRemoteRequest`).
    Extractor {
        /// `T`.
        ty: Type,
        /// `&mut T`.
        mutable: bool,
    },
    /// The by-value argument.
    Payload(Payload),
}

/// The payload argument.
pub(crate) struct Payload {
    /// Its type.
    pub(crate) ty: Type,
    /// `Bytes`: the raw body, not decoded.
    pub(crate) raw: bool,
    /// Its name if it is a plain identifier, for the client stub.
    pub(crate) ident: Option<Ident>,
}

/// A method's return type.
pub(crate) enum Output {
    /// Nothing or `()`.
    Unit,
    /// `T`.
    Value {
        /// `T`.
        ty: Type,
        /// `T` is `Bytes`: sent raw.
        raw: bool,
    },
    /// `Result<T, E>` or a `Result<T>` alias.
    Result {
        /// `T`.
        ok: Type,
        /// `T` is `Bytes`: sent raw.
        raw: bool,
        /// `E` (or the alias), where an `E` that is not `Into<PitayaError>`
        /// is reported.
        error_span: Span,
    },
}

impl Output {
    /// The type of the value a caller gets (`None` for `()`).
    pub(crate) fn success_type(&self) -> Option<&Type> {
        match self {
            Self::Unit => None,
            Self::Value { ty, .. } | Self::Result { ok: ty, .. } => (!is_unit(ty)).then_some(ty),
        }
    }
}

impl Route {
    /// Whether the route is indifferent to the app's serializer: a remote
    /// (always protobuf), or a handler whose payload is absent or raw
    /// `Bytes` and whose reply is raw `Bytes` or none (a notify).
    pub(crate) fn any_serializer(&self) -> bool {
        if self.kind == RouteKind::Remote {
            return true;
        }
        let payload_raw = self.payload().is_none_or(|payload| payload.raw);
        let reply_raw = match &self.output {
            Output::Unit => true,
            Output::Value { raw, .. } | Output::Result { raw, .. } => *raw,
        };
        payload_raw && reply_raw
    }

    /// The payload argument, if any.
    pub(crate) fn payload(&self) -> Option<&Payload> {
        self.args.iter().find_map(|arg| match arg {
            Arg::Payload(payload) => Some(payload),
            Arg::Extractor { .. } => None,
        })
    }
}

/// How method names become route names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameRule {
    /// `send_message` -> `sendMessage` (the default).
    CamelCase,
    /// `send_message` -> `sendmessage` (Go Pitaya's `strings.ToLower` of `SendMessage`).
    Lowercase,
    /// `send_message` -> `send_message`.
    SnakeCase,
    /// `send_message` -> `SendMessage` (Go Pitaya's default).
    PascalCase,
}

impl RenameRule {
    const VALUES: &'static str = "`camelCase`, `lowercase`, `snake_case` or `PascalCase`";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "camelCase" => Some(Self::CamelCase),
            "lowercase" => Some(Self::Lowercase),
            "snake_case" => Some(Self::SnakeCase),
            "PascalCase" => Some(Self::PascalCase),
            _ => None,
        }
    }

    /// The route name of method `name`.
    pub(crate) fn apply(self, name: &str) -> String {
        let words = words(name);
        let mut out = String::new();
        for (i, word) in words.iter().enumerate() {
            match self {
                Self::Lowercase => out.push_str(word),
                Self::SnakeCase => {
                    if i > 0 {
                        out.push('_');
                    }
                    out.push_str(word);
                }
                Self::CamelCase if i == 0 => out.push_str(word),
                Self::CamelCase | Self::PascalCase => out.push_str(&capitalize(word)),
            }
        }
        out
    }
}

/// Splits `send_message` (or `sendMessage`) into lowercase words.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '_' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `ChatRoom` -> `chatRoom`.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Checks a component or route name given with `name = "..."`.
fn check_name(lit: &LitStr, what: &str, errors: &mut Errors) -> Option<String> {
    let name = lit.value();
    if name.is_empty() {
        errors.spanned(lit, format_args!("{what} names cannot be empty"));
        None
    } else if name.contains('.') {
        errors.spanned(
            lit,
            format_args!(
                "{what} names cannot contain '.': routes are `serverType.component.method`"
            ),
        );
        None
    } else {
        Some(name)
    }
}

impl Component {
    /// Validates the parsed component. `None` when something is wrong (every
    /// problem is in `errors`).
    pub(crate) fn build(
        args: &ComponentArgs,
        imp: &ItemImpl,
        methods: Vec<RouteMethod>,
        errors: &mut Errors,
    ) -> Option<Self> {
        let krate = match &args.krate {
            None => quote!(::pitaya),
            Some(lit) => match lit.parse::<syn::Path>() {
                Ok(path) => path.into_token_stream(),
                Err(_) => {
                    errors.spanned(
                        lit,
                        "`crate` must be a path to the pitaya facade, like \"::my_pitaya\"",
                    );
                    TokenStream::new()
                }
            },
        };
        let rename = match &args.rename_all {
            None => RenameRule::CamelCase,
            Some(lit) => RenameRule::from_name(&lit.value()).unwrap_or_else(|| {
                errors.spanned(
                    lit,
                    format_args!(
                        "unknown `rename_all` value {:?}; expected {}",
                        lit.value(),
                        RenameRule::VALUES
                    ),
                );
                RenameRule::CamelCase
            }),
        };
        let serializer = match &args.serializer {
            None => Wire::Serde,
            Some(lit) => Wire::from_name(&lit.value()).unwrap_or_else(|| {
                errors.spanned(
                    lit,
                    format_args!(
                        "unknown `serializer` value {:?}; expected {}",
                        lit.value(),
                        Wire::VALUES
                    ),
                );
                Wire::Serde
            }),
        };
        let remote_vis = match &args.remote_vis {
            None => Some(Visibility::Public(Default::default())),
            Some(lit) => match lit.parse::<Visibility>() {
                Ok(vis) => Some(vis),
                Err(_) => {
                    errors.spanned(
                        lit,
                        "`remote_vis` must be a visibility, like \"pub(crate)\"",
                    );
                    None
                }
            },
        };

        let type_ident = type_ident(&imp.self_ty);
        if type_ident.is_none() {
            errors.spanned(
                &imp.self_ty,
                "`#[component]` needs a named type: `#[component] impl Room { ... }`",
            );
        }
        let name = match (&args.name, &type_ident) {
            (Some(lit), _) => check_name(lit, "component", errors),
            (None, Some(ident)) => Some(lower_first(&ident.unraw().to_string())),
            (None, None) => None,
        };

        let mut routes = Vec::new();
        let mut seen: HashMap<String, Ident> = HashMap::new();
        for method in methods {
            let Some(route) = Route::build(method, rename, errors) else {
                continue;
            };
            if let Some(first) = seen.get(&route.route.method) {
                errors.error(
                    route.name_span,
                    format_args!(
                        "duplicate route `{}`: method `{first}` already uses it",
                        route.route.method
                    ),
                );
                continue;
            }
            seen.insert(route.route.method.clone(), route.route.ident.clone());
            routes.push(route.route);
        }

        let stub = match (&type_ident, remote_vis) {
            (Some(ident), Some(vis))
                if routes.iter().any(|route| route.kind == RouteKind::Remote) =>
            {
                Some(Stub {
                    ident: format_ident!("{}Remote", ident.unraw(), span = ident.span()),
                    vis,
                    component: ident.unraw().to_string(),
                })
            }
            _ => None,
        };

        if !errors.is_empty() {
            return None;
        }
        let payload = if routes.iter().all(Route::any_serializer) {
            PayloadFormat::Any
        } else {
            match serializer {
                Wire::Serde => PayloadFormat::Serde,
                Wire::Protobuf => PayloadFormat::Protobuf,
            }
        };
        Some(Self {
            krate,
            self_ty: (*imp.self_ty).clone(),
            generics: imp.generics.clone(),
            name: name?,
            serializer,
            payload,
            stub,
            routes,
        })
    }
}

/// A route and where its name comes from, for duplicate reports.
struct Built {
    route: Route,
    name_span: Span,
}

impl Route {
    fn build(method: RouteMethod, rename: RenameRule, errors: &mut Errors) -> Option<Built> {
        let RouteMethod { item, attrs } = method;
        let errors_before = errors.len();
        let mut attrs = attrs.into_iter();
        let attr = attrs.next()?;
        for extra in attrs {
            if extra.kind == attr.kind {
                errors.spanned(
                    &extra.attr,
                    format_args!("duplicate `{}` attribute", extra.kind.attr()),
                );
            } else {
                errors.spanned(
                    &extra.attr,
                    "a method is either a `#[handler]` (called by clients) or a `#[remote]` (called by servers), not both",
                );
            }
        }

        let sig = &item.sig;
        let (method, name_span) = match &attr.name {
            Some(lit) => (
                check_name(lit, "route", errors).unwrap_or_default(),
                lit.span(),
            ),
            None => (
                rename.apply(&sig.ident.unraw().to_string()),
                sig.ident.span(),
            ),
        };
        let what = match attr.kind {
            AttrKind::Handler => "handlers",
            AttrKind::Remote => "remotes",
        };
        check_signature(sig, what, errors);
        let args = arguments(sig, attr.kind, what, errors);
        let output = output(&sig.output);
        if attr.kind == AttrKind::Remote {
            if sig.ident == "new" {
                errors.spanned(
                    &sig.ident,
                    "a remote named `new` would clash with the constructor of the generated remote client; rename the method and keep the route with `#[remote(name = \"new\")]`",
                );
            }
            if let Some(Payload { ty, raw: true, .. }) = args.iter().find_map(|arg| match arg {
                Arg::Payload(payload) => Some(payload),
                Arg::Extractor { .. } => None,
            }) {
                errors.spanned(
                    ty,
                    "remotes cannot take a raw `Bytes` payload: the typed client serializes its argument; take a `Deserialize` type",
                );
            }
            if let Output::Value { ty, raw: true }
            | Output::Result {
                ok: ty, raw: true, ..
            } = &output
            {
                errors.spanned(
                    ty,
                    "remotes cannot return raw `Bytes`: the typed client decodes the reply; return a `Serialize` type",
                );
            }
        }
        if errors.len() != errors_before {
            return None;
        }

        let kind = match (attr.kind, &output) {
            (AttrKind::Remote, _) => RouteKind::Remote,
            (AttrKind::Handler, Output::Unit) => RouteKind::Notify,
            (AttrKind::Handler, _) => RouteKind::Request,
        };
        let docs = item
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("doc"))
            .cloned()
            .collect();
        let cfgs = item
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"))
            .cloned()
            .collect();
        Some(Built {
            route: Route {
                ident: sig.ident.clone(),
                method,
                kind,
                args,
                output,
                docs,
                cfgs,
            },
            name_span,
        })
    }
}

const SHARED: &str = "calls share the component (`Arc<Self>`) and may run concurrently";

/// Checks the parts of the signature other than the arguments.
fn check_signature(sig: &Signature, what: &str, errors: &mut Errors) {
    if sig.asyncness.is_none() {
        errors.error(
            sig.fn_token.span,
            format_args!(
                "{what} must be `async fn`: the route table calls them through boxed futures"
            ),
        );
    }
    if let Safety::Unsafe(token) = &sig.safety {
        errors.error(token.span, format_args!("{what} cannot be `unsafe fn`"));
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, format_args!("{what} cannot have an `extern` ABI"));
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            errors.spanned(
                param,
                format_args!("{what} cannot be generic: the route table holds one concrete function per route"),
            );
        }
    }
}

/// Checks the receiver and sorts the other arguments into extractors and
/// the payload.
fn arguments(sig: &Signature, kind: AttrKind, what: &str, errors: &mut Errors) -> Vec<Arg> {
    match sig.receiver() {
        None => errors.error(
            sig.ident.span(),
            format_args!("{what} are methods: add `&self` as the first argument"),
        ),
        Some(receiver) => match &receiver.kind {
            ReceiverKind::Reference(_, _, None) => {}
            ReceiverKind::Typed(_, ty) if matches!(&**ty, Type::Reference(r) if r.mutability.is_none() && is_self(&r.elem)) => {}
            ReceiverKind::Reference(_, _, Some(_)) | ReceiverKind::Typed(..) if is_mut_self(receiver) => errors.spanned(
                receiver,
                format_args!("`&mut self` is not supported: {SHARED}; take `&self` and use interior mutability (`Mutex`, atomics)"),
            ),
            ReceiverKind::Typed(_, ty) => errors.spanned(
                receiver,
                format_args!(
                    "`self: {}` is not supported: take `&self` (the runtime holds the component in an `Arc` and lends it to each call)",
                    type_name(ty)
                ),
            ),
            _ => errors.spanned(
                receiver,
                format_args!("take `&self`, not `self` by value: {SHARED}"),
            ),
        },
    }

    let mut args = Vec::new();
    let mut payload_seen = false;
    for arg in &sig.inputs {
        let FnArg::Typed(arg) = arg else { continue };
        match &*arg.ty {
            Type::Reference(reference) => {
                if kind == AttrKind::Remote && last_ident(&reference.elem).is_some_and(|ident| ident == "Session") {
                    errors.spanned(
                        &arg.ty,
                        "remotes have no client session; take &Context (server-to-server calls carry only the context and the payload)",
                    );
                }
                args.push(Arg::Extractor {
                    ty: (*reference.elem).clone(),
                    mutable: reference.mutability.is_some(),
                });
            }
            Type::ImplTrait(_) => errors.spanned(
                &arg.ty,
                format_args!("{what} cannot take `impl Trait` arguments: the payload must be one concrete type"),
            ),
            ty => {
                if let Some(ident) = last_ident(ty).filter(|ident| *ident == "Session" || *ident == "Context") {
                    errors.spanned(
                        ty,
                        format_args!("take `&{ident}`: extractors are taken by reference, only the payload is taken by value"),
                    );
                    continue;
                }
                if payload_seen {
                    errors.spanned(
                        arg,
                        format_args!("{what} take at most one payload argument (by value); extractors such as `&Context` are taken by reference"),
                    );
                }
                payload_seen = true;
                let ident = match &*arg.pat {
                    Pat::Ident(pat) if pat.subpat.is_none() => Some(pat.ident.clone()),
                    _ => None,
                };
                args.push(Arg::Payload(Payload {
                    ty: ty.clone(),
                    raw: is_bytes(ty),
                    ident,
                }));
            }
        }
    }
    args
}

/// `&mut self` or `self: &mut Self`.
fn is_mut_self(receiver: &syn::Receiver) -> bool {
    match &receiver.kind {
        ReceiverKind::Reference(_, _, mutability) => mutability.is_some(),
        ReceiverKind::Typed(_, ty) => {
            matches!(&**ty, Type::Reference(r) if r.mutability.is_some() && is_self(&r.elem))
        }
        _ => false,
    }
}

fn output(output: &ReturnType) -> Output {
    let ty = match output {
        ReturnType::Default => return Output::Unit,
        ReturnType::Type(_, ty) => ungroup(ty),
    };
    if is_unit(ty) {
        return Output::Unit;
    }
    if let Type::Path(path) = ty
        && path.qself.is_none()
        && let Some(last) = path.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(GenericArgument::Type(ok)) = args.args.first()
        && args.args.len() <= 2
    {
        let error_span = match args.args.get(1) {
            Some(err) => err.span(),
            None => ty.span(),
        };
        return Output::Result {
            ok: ok.clone(),
            raw: is_bytes(ok),
            error_span,
        };
    }
    Output::Value {
        ty: ty.clone(),
        raw: is_bytes(ty),
    }
}

fn ungroup(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(group) => ty = &group.elem,
            Type::Paren(paren) => ty = &paren.elem,
            _ => return ty,
        }
    }
}

/// `()`.
pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ungroup(ty), Type::Tuple(tuple) if tuple.elems.is_empty())
}

/// A path type ending in `Bytes` without generic arguments.
fn is_bytes(ty: &Type) -> bool {
    matches!(ungroup(ty), Type::Path(path)
        if path.qself.is_none()
            && path.path.segments.last().is_some_and(|last| last.ident == "Bytes" && last.arguments.is_none()))
}

fn is_self(ty: &Type) -> bool {
    matches!(ungroup(ty), Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// The last identifier of a path type (`Session` in `pitaya::Session`).
fn last_ident(ty: &Type) -> Option<&Ident> {
    match ungroup(ty) {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|segment| &segment.ident)
        }
        _ => None,
    }
}

/// The name of the component type: `Room` in `impl Room` or `impl<T> Room<T>`.
fn type_ident(ty: &Type) -> Option<&Ident> {
    last_ident(ty)
}

/// A type as a compact string (`Vec<String>`, not `Vec < String >`), for
/// `HandlerMeta` and messages.
pub(crate) fn type_name(ty: &Type) -> String {
    let mut out = String::new();
    write_tokens(ty.to_token_stream(), &mut out);
    out
}

/// What was written last, to place spaces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Word,
    Quote,
    Lifetime,
    Punct,
}

fn write_tokens(tokens: TokenStream, out: &mut String) {
    use proc_macro2::{Delimiter, TokenTree};
    let mut last = Last::Nothing;
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => {
                if matches!(last, Last::Word | Last::Lifetime) {
                    out.push(' ');
                }
                out.push_str(&ident.to_string());
                last = if last == Last::Quote {
                    Last::Lifetime
                } else {
                    Last::Word
                };
            }
            TokenTree::Literal(lit) => {
                if matches!(last, Last::Word | Last::Lifetime) {
                    out.push(' ');
                }
                out.push_str(&lit.to_string());
                last = Last::Word;
            }
            TokenTree::Punct(punct) => {
                match punct.as_char() {
                    ',' | ';' => {
                        out.push(punct.as_char());
                        out.push(' ');
                    }
                    '+' | '=' => {
                        out.push(' ');
                        out.push(punct.as_char());
                        out.push(' ');
                    }
                    '-' => out.push_str(" -"),
                    '>' if out.ends_with('-') => out.push_str("> "),
                    c => out.push(c),
                }
                last = if punct.as_char() == '\'' {
                    Last::Quote
                } else {
                    Last::Punct
                };
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                let bracket = group.delimiter() == Delimiter::Bracket;
                if last == Last::Lifetime || (last == Last::Word && bracket) {
                    out.push(' ');
                }
                out.push_str(open);
                write_tokens(group.stream(), out);
                out.push_str(close);
                last = if group.delimiter() == Delimiter::None {
                    Last::Word
                } else {
                    Last::Punct
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rules() {
        let cases = [
            (
                "send_message",
                "sendMessage",
                "sendmessage",
                "send_message",
                "SendMessage",
            ),
            ("join", "join", "join", "join", "Join"),
            (
                "get_v2_info",
                "getV2Info",
                "getv2info",
                "get_v2_info",
                "GetV2Info",
            ),
            (
                "sendMessage",
                "sendMessage",
                "sendmessage",
                "send_message",
                "SendMessage",
            ),
        ];
        for (input, camel, lower, snake, pascal) in cases {
            assert_eq!(RenameRule::CamelCase.apply(input), camel);
            assert_eq!(RenameRule::Lowercase.apply(input), lower);
            assert_eq!(RenameRule::SnakeCase.apply(input), snake);
            assert_eq!(RenameRule::PascalCase.apply(input), pascal);
        }
    }

    #[test]
    fn component_names() {
        assert_eq!(lower_first("Room"), "room");
        assert_eq!(lower_first("ChatRoom"), "chatRoom");
    }

    #[test]
    fn type_names_are_compact() {
        let ty: Type = syn::parse_quote!(std::collections::HashMap<String, Vec<u8>>);
        assert_eq!(type_name(&ty), "std::collections::HashMap<String, Vec<u8>>");
        let ty: Type = syn::parse_quote!(&'static [u8; 4]);
        assert_eq!(type_name(&ty), "&'static [u8; 4]");
        let ty: Type = syn::parse_quote!(());
        assert_eq!(type_name(&ty), "()");
        let ty: Type = syn::parse_quote!(Box<dyn Send + Sync>);
        assert_eq!(type_name(&ty), "Box<dyn Send + Sync>");
        let ty: Type = syn::parse_quote!(&'a (u8, Box<dyn Fn(u8) -> u8>));
        assert_eq!(type_name(&ty), "&'a (u8, Box<dyn Fn(u8) -> u8>)");
        let ty: Type = syn::parse_quote!(Box<dyn Iterator<Item = u8>>);
        assert_eq!(type_name(&ty), "Box<dyn Iterator<Item = u8>>");
    }
}
