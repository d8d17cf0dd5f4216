//! Syntax: the `#[component(...)]` options, the annotated item and the
//! `#[handler]`/`#[remote]` attributes on its methods.
//!
//! Nothing here judges meaning (that is `model`'s job); it only turns
//! tokens into syntax trees, records every syntax error it meets in the
//! accumulator and keeps going.

use proc_macro2::Ident;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{
    Attribute, ImplItem, ImplItemFn, Item, ItemImpl, LitStr, MacroDelimiter, Meta, MetaList, Path,
    token,
};

use crate::model::Errors;

/// The options of `#[component(...)]`, as written.
#[derive(Default)]
pub(crate) struct ComponentArgs {
    /// `name = "room"`
    pub(crate) name: Option<LitStr>,
    /// `rename_all = "lowercase"`
    pub(crate) rename_all: Option<LitStr>,
    /// `crate = "::my_pitaya"`
    pub(crate) krate: Option<LitStr>,
    /// `remote_vis = "pub(crate)"`
    pub(crate) remote_vis: Option<LitStr>,
    /// `serializer = "protobuf"`
    pub(crate) serializer: Option<LitStr>,
}

const COMPONENT_OPTIONS: &str = "`name`, `rename_all`, `serializer`, `remote_vis` or `crate`";
const METHOD_OPTIONS: &str = "`name`";

/// Parses the arguments of `#[component(...)]`.
pub(crate) fn component_args(args: TokenStream, errors: &mut Errors) -> ComponentArgs {
    let mut out = ComponentArgs::default();
    let parser = syn::meta::parser(|meta| {
        let slot = if meta.path.is_ident("name") {
            &mut out.name
        } else if meta.path.is_ident("rename_all") {
            &mut out.rename_all
        } else if meta.path.is_ident("crate") {
            &mut out.krate
        } else if meta.path.is_ident("remote_vis") {
            &mut out.remote_vis
        } else if meta.path.is_ident("serializer") {
            &mut out.serializer
        } else {
            errors.push(unknown_option(
                &meta.path,
                "#[component]",
                COMPONENT_OPTIONS,
            ));
            return skip_value(&meta);
        };
        set_once(slot, &meta, errors)
    });
    if let Err(err) = parser.parse2(args) {
        errors.push(err);
    }
    out
}

/// Which helper attribute marks a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttrKind {
    /// `#[handler]`: reachable by clients.
    Handler,
    /// `#[remote]`: server-to-server only.
    Remote,
}

impl AttrKind {
    /// The attribute as users write it, for messages.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Self::Handler => "#[handler]",
            Self::Remote => "#[remote]",
        }
    }
}

/// One `#[handler(...)]` or `#[remote(...)]` attribute, parsed.
pub(crate) struct MethodAttr {
    /// Handler or remote.
    pub(crate) kind: AttrKind,
    /// The attribute as written, for errors about it.
    pub(crate) attr: Attribute,
    /// `name = "getInfo"`
    pub(crate) name: Option<LitStr>,
}

/// A method of the component's impl block that carries helper attributes.
pub(crate) struct RouteMethod {
    /// The method.
    pub(crate) item: ImplItemFn,
    /// The helper attributes it carried (at least one).
    pub(crate) attrs: Vec<MethodAttr>,
}

/// Whether `attr` is one of our helper attributes (`#[handler]`,
/// `#[pitaya::remote]`, ...): matched by the last path segment, so a
/// renamed facade (`#[my_pitaya::handler]`) works too.
fn helper_kind(attr: &Attribute) -> Option<AttrKind> {
    let last = attr.path().segments.last()?;
    if last.ident == "handler" {
        Some(AttrKind::Handler)
    } else if last.ident == "remote" {
        Some(AttrKind::Remote)
    } else {
        None
    }
}

/// Parses the item under `#[component]`: only an inherent impl block is
/// accepted. On anything else an error is recorded and the tokens to emit
/// in its place are returned: the item as it was (a trait impl with its
/// helper attributes marked as read, so that they add no error of their
/// own).
pub(crate) fn component_item(
    item: TokenStream,
    errors: &mut Errors,
) -> Result<ItemImpl, TokenStream> {
    let parsed = match syn::parse2::<Item>(item.clone()) {
        Ok(parsed) => parsed,
        Err(err) => {
            errors.push(err);
            return Err(item);
        }
    };
    const HINT: &str = "`#[component]` goes on the inherent impl block of the component type: `#[component] impl Room { ... }`";
    let (span, what) = match parsed {
        Item::Impl(imp) if imp.trait_.is_none() => return Ok(imp),
        Item::Impl(mut imp) => {
            let span = imp
                .trait_
                .as_ref()
                .map_or_else(Span::call_site, |(path, _)| path.span());
            errors.error(span, format_args!("{HINT}, not on a trait impl"));
            for item in &mut imp.items {
                if let ImplItem::Fn(method) = item {
                    method
                        .attrs
                        .iter_mut()
                        .filter(|attr| helper_kind(attr).is_some())
                        .for_each(mark);
                }
            }
            return Err(imp.into_token_stream());
        }
        Item::Struct(item) => (item.ident.span(), "a struct"),
        Item::Enum(item) => (item.ident.span(), "an enum"),
        Item::Union(item) => (item.ident.span(), "a union"),
        Item::Trait(item) => (item.ident.span(), "a trait"),
        Item::Fn(item) => (item.sig.ident.span(), "a function"),
        Item::Mod(item) => (item.ident.span(), "a module"),
        _ => (Span::call_site(), "this item"),
    };
    errors.error(span, format_args!("{HINT}, not on {what}"));
    Err(item)
}

/// Reads (and marks, see [`MARKER`]) the helper attributes of every item of
/// `imp` and returns the methods that had some. Helper attributes on
/// anything but a method are reported.
pub(crate) fn route_methods(imp: &mut ItemImpl, errors: &mut Errors) -> Vec<RouteMethod> {
    let mut methods = Vec::new();
    for item in &mut imp.items {
        let attrs = match item {
            ImplItem::Fn(method) => take_helper_attrs(&mut method.attrs, errors),
            ImplItem::Const(item) => take_helper_attrs(&mut item.attrs, errors),
            ImplItem::Type(item) => take_helper_attrs(&mut item.attrs, errors),
            ImplItem::Macro(item) => take_helper_attrs(&mut item.attrs, errors),
            _ => Vec::new(),
        };
        if attrs.is_empty() {
            continue;
        }
        match item {
            ImplItem::Fn(method) => methods.push(RouteMethod {
                item: method.clone(),
                attrs,
            }),
            _ => {
                for attr in attrs {
                    errors.spanned(
                        &attr.attr,
                        format_args!(
                            "`{}` goes on a method (`async fn`) of the component",
                            attr.kind.attr()
                        ),
                    );
                }
            }
        }
    }
    methods
}

/// The argument `#[component]` leaves in the helper attributes it has read:
/// `#[handler]` becomes `#[handler(__pitaya_in_component)]`, which the
/// standalone attribute accepts and expands to the method unchanged. The
/// attribute stays where the user wrote it, so its import is used and the
/// IDE still resolves it.
pub(crate) const MARKER: &str = "__pitaya_in_component";

/// Parses the helper attributes of `attrs` and marks them as read.
fn take_helper_attrs(attrs: &mut [Attribute], errors: &mut Errors) -> Vec<MethodAttr> {
    let mut found = Vec::new();
    for attr in attrs {
        let Some(kind) = helper_kind(attr) else {
            continue;
        };
        found.push(method_attr(attr, kind, errors));
        mark(attr);
    }
    found
}

/// `#[handler(...)]` -> `#[handler(__pitaya_in_component)]`.
fn mark(attr: &mut Attribute) {
    let path = attr.path().clone();
    let span = attr.meta.span();
    attr.meta = Meta::List(MetaList {
        path,
        delimiter: MacroDelimiter::Paren(token::Paren(span)),
        tokens: Ident::new(MARKER, span).into_token_stream(),
    });
}

/// Whether the arguments of a standalone `#[handler]`/`#[remote]` are the
/// marker `#[component]` leaves.
pub(crate) fn is_marker(args: &TokenStream) -> bool {
    let mut trees = args.clone().into_iter();
    matches!((trees.next(), trees.next()), (Some(TokenTree::Ident(ident)), None) if ident == MARKER)
}

/// Parses one `#[handler]`, `#[handler(name = "...")]` (same for remote).
fn method_attr(attr: &Attribute, kind: AttrKind, errors: &mut Errors) -> MethodAttr {
    let mut out = MethodAttr {
        kind,
        attr: attr.clone(),
        name: None,
    };
    match &attr.meta {
        Meta::Path(_) => {}
        Meta::List(_) => {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    set_once(&mut out.name, &meta, errors)
                } else {
                    errors.push(unknown_option(&meta.path, kind.attr(), METHOD_OPTIONS));
                    skip_value(&meta)
                }
            });
            if let Err(err) = result {
                errors.push(err);
            }
        }
        Meta::NameValue(meta) => {
            let bare = kind.attr().trim_start_matches("#[").trim_end_matches(']');
            errors.spanned(
                meta,
                format_args!("expected `#[{bare}]` or `#[{bare}(name = \"...\")]`"),
            );
        }
    }
    out
}

/// Stores the string value of an option, reporting a second occurrence.
fn set_once(
    slot: &mut Option<LitStr>,
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<()> {
    let value: LitStr = meta.value()?.parse()?;
    if slot.is_some() {
        errors.spanned(
            &meta.path,
            format_args!("duplicate option `{}`", path_name(&meta.path)),
        );
    } else {
        *slot = Some(value);
    }
    Ok(())
}

fn unknown_option(path: &Path, attr: &str, expected: &str) -> syn::Error {
    syn::Error::new_spanned(
        path,
        format_args!(
            "unknown `{attr}` option `{}`; expected {expected}",
            path_name(path)
        ),
    )
}

/// Skips the rest of an unknown option (`= value`, `(...)`), up to the next
/// comma, so the options after it are still checked.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    meta.input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tree, next)) = rest.token_tree() {
            if let TokenTree::Punct(punct) = &tree
                && punct.as_char() == ','
            {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

fn path_name(path: &Path) -> String {
    let mut name = String::new();
    if path.leading_colon.is_some() {
        name.push_str("::");
    }
    for (i, segment) in path.segments.iter().enumerate() {
        if i > 0 {
            name.push_str("::");
        }
        name.push_str(&segment.ident.to_string());
    }
    name
}
