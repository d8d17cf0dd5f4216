//! Code generation: one function per generated item.
//!
//! Generated code names only paths under `<facade>::__private` (the facade is
//! `::pitaya` unless `crate = "..."` says otherwise) and no prelude item, so
//! it compiles under `#![no_implicit_prelude]` and without a direct
//! dependency on serde or bytes. Helper identifiers start with `__pitaya_`.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, Type};

use crate::model::{Arg, Component, Errors, Output, Route, RouteKind, Stub, Wire, type_name};
use crate::parse::{self, AttrKind};

/// `#[component]`: parse, validate, expand. On errors, the user's impl
/// block is still emitted, followed by one
/// `compile_error!` per problem.
pub(crate) fn component(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse::component_args(args, &mut errors);
    let mut imp = match parse::component_item(item, &mut errors) {
        Ok(imp) => imp,
        Err(mut out) => {
            out.extend(errors.to_compile_errors());
            return out;
        }
    };
    let methods = parse::route_methods(&mut imp, &mut errors);
    let model = Component::build(&args, &imp, methods, &mut errors);
    let mut out = imp.to_token_stream();
    match model {
        Some(model) if errors.is_empty() => out.extend(generated(&model)),
        _ => out.extend(errors.to_compile_errors()),
    }
    debug_print(&out);
    out
}

/// `#[handler]` or `#[remote]`: inside a `#[component]` impl block (which
/// left its marker as the argument) the method unchanged; anywhere else the
/// item unchanged plus an error at the attribute.
pub(crate) fn helper(kind: AttrKind, args: &TokenStream, item: TokenStream) -> TokenStream {
    if parse::is_marker(args) {
        return item;
    }
    let error = syn::Error::new(
        Span::call_site(),
        format_args!(
            "`{}` only works on a method of an impl block annotated with `#[component]`",
            kind.attr()
        ),
    )
    .to_compile_error();
    let mut out = item;
    out.extend(error);
    out
}

/// `PITAYA_MACROS_DEBUG=1` prints every expansion to stderr.
fn debug_print(out: &TokenStream) {
    if std::env::var_os("PITAYA_MACROS_DEBUG").is_some_and(|value| value == "1") {
        eprintln!("// ---- #[component] expansion ----\n{out}\n");
    }
}

/// `<facade>::__private`.
fn private(model: &Component) -> TokenStream {
    let krate = &model.krate;
    quote!(#krate::__private)
}

/// Everything generated after the user's impl block.
fn generated(model: &Component) -> TokenStream {
    let component_impl = component_impl(model);
    let glue = model.routes.iter().map(|route| glue_fn(model, route));
    let stub = model.stub.as_ref().map(|stub| remote_stub(model, stub));
    quote! {
        const _: () = {
            #component_impl
            #(#glue)*
        };
        #stub
    }
}

/// `impl Component for Room { const NAME; const ROUTES; }`.
fn component_impl(model: &Component) -> TokenStream {
    let p = private(model);
    let self_ty = &model.self_ty;
    let (impl_generics, _, where_clause) = model.generics.split_for_impl();
    let name = &model.name;
    let entries = model.routes.iter().map(|route| route_entry(model, route));
    let format = Ident::new(model.payload.variant(), Span::call_site());
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::Component for #self_ty #where_clause {
            const NAME: &'static str = #name;
            const ROUTES: &'static [#p::RouteEntry<Self>] = &[#(#entries),*];
            const PAYLOAD: #p::PayloadFormat = #p::PayloadFormat::#format;
        }
    }
}

/// The name of a route's glue function.
fn glue_ident(route: &Route) -> Ident {
    format_ident!("__pitaya_{}", route.ident.unraw())
}

/// One `RouteEntry { method, kind, call, meta }`.
fn route_entry(model: &Component, route: &Route) -> TokenStream {
    let p = private(model);
    let cfgs = &route.cfgs;
    let method = &route.method;
    let kind = match route.kind {
        RouteKind::Request => quote!(Request),
        RouteKind::Notify => quote!(Notify),
        RouteKind::Remote => quote!(Remote),
    };
    let glue = glue_ident(route);
    let (_, ty_generics, _) = model.generics.split_for_impl();
    let turbofish = ty_generics.as_turbofish();
    let some_str = |name: Option<String>| match name {
        Some(name) => quote!(#p::Some(#name)),
        None => quote!(#p::None),
    };
    let input = some_str(route.payload().map(|payload| type_name(&payload.ty)));
    let output = some_str(route.output.success_type().map(type_name));
    quote! {
        #(#cfgs)*
        #p::RouteEntry {
            method: #method,
            kind: #p::HandlerKind::#kind,
            call: #glue #turbofish,
            meta: #p::HandlerMeta {
                input: #input,
                output: #output,
            },
        }
    }
}

/// The glue function of one route: extract, decode, call, encode.
fn glue_fn(model: &Component, route: &Route) -> TokenStream {
    let p = private(model);
    let self_ty = &model.self_ty;
    let (impl_generics, _, where_clause) = model.generics.split_for_impl();
    let glue = glue_ident(route);
    let method = &route.ident;
    let cfgs = &route.cfgs;

    let mut lets = Vec::new();
    let mut call_args = Vec::new();
    for (i, arg) in route.args.iter().enumerate() {
        let local = format_ident!("__pitaya_arg{}", i);
        match arg {
            Arg::Extractor { ty, mutable } => {
                // Spanned at the argument's type: a type that is no extractor
                // is reported there, with the trait's `on_unimplemented` text.
                let span = ty.span();
                let ty = replace_self(ty, self_ty);
                let extract = if route.kind == RouteKind::Remote {
                    quote_spanned!(span=> <#ty as #p::FromRemoteRequest>::from_remote_request)
                } else {
                    quote_spanned!(span=> <#ty as #p::FromRequest>::from_request)
                };
                if *mutable {
                    lets.push(quote!(let mut #local = #extract(&__pitaya_request)?;));
                    call_args.push(quote!(&mut #local));
                } else {
                    lets.push(quote!(let #local = #extract(&__pitaya_request)?;));
                    call_args.push(quote!(&#local));
                }
            }
            Arg::Payload(payload) => {
                let span = payload.ty.span();
                let ty = replace_self(&payload.ty, self_ty);
                if payload.raw {
                    lets.push(quote! {
                        let #local: #ty = #p::Clone::clone(#p::Request::body(&__pitaya_request));
                    });
                } else {
                    // Remotes carry protobuf (as in Go), handlers the app's
                    // serializer: serde types, or prost messages in a
                    // protobuf component. Spanned at the type: one that
                    // cannot be decoded is reported there.
                    let decode = match (route.kind, model.serializer) {
                        (RouteKind::Remote, _) => {
                            quote_spanned!(span=> #p::Request::decode_remote::<#ty>)
                        }
                        (_, Wire::Protobuf) => {
                            quote_spanned!(span=> #p::Request::decode_message::<#ty>)
                        }
                        (_, Wire::Serde) => quote_spanned!(span=> #p::Request::decode::<#ty>),
                    };
                    lets.push(quote!(let #local = #decode(&__pitaya_request)?;));
                }
                call_args.push(quote!(#local));
            }
        }
    }

    let call = quote!(<#self_ty>::#method(&*__pitaya_component, #(#call_args),*).await);
    let encode = |ty: &Type| {
        let span = ty.span();
        let ty = replace_self(ty, self_ty);
        match (route.kind, model.serializer) {
            (RouteKind::Remote, _) => quote_spanned!(span=> #p::Request::encode_remote::<#ty>),
            (_, Wire::Protobuf) => quote_spanned!(span=> #p::Request::encode_message::<#ty>),
            (_, Wire::Serde) => quote_spanned!(span=> #p::Request::encode::<#ty>),
        }
    };
    let reply = match &route.output {
        // A remote always replies (`google.protobuf.Empty`), so that its
        // client can decode a `()`.
        Output::Unit if route.kind == RouteKind::Remote => quote! {
            #call;
            #p::Request::encode_remote::<()>(&__pitaya_request, &())
        },
        Output::Unit => quote! {
            #call;
            #p::Ok(#p::None)
        },
        Output::Value { raw: true, .. } => quote!(#p::Ok(#p::Some(#call))),
        Output::Value { ty, raw: false } => {
            let encode = encode(ty);
            quote! {
                let __pitaya_reply = #call;
                #encode(&__pitaya_request, &__pitaya_reply)
            }
        }
        Output::Result {
            ok,
            raw,
            error_span,
        } => {
            let ok_arm = if *raw {
                quote!(#p::Ok(#p::Some(__pitaya_value)))
            } else {
                let encode = encode(ok);
                quote!(#encode(&__pitaya_request, &__pitaya_value))
            };
            // The conversion is spanned at `E` (binding included): an error
            // type that is not `Into<PitayaError>` is reported there.
            let error = Ident::new("__pitaya_error", *error_span);
            let into = respan(quote!(#p::Into::<#p::PitayaError>::into), *error_span);
            quote! {
                match #call {
                    #p::Ok(__pitaya_value) => #ok_arm,
                    #p::Err(#error) => #p::Err(#into(#error)),
                }
            }
        }
    };

    // Spanned at the method: a future that is not `Send` is reported there
    // (the whole `Box::pin(..)` expression, which is coerced to the boxed
    // `Send` future, needs the span, so the facade path gets it too).
    let pin = respan(quote!(#p::Box::pin), method.span());
    let future = quote_spanned! {method.span()=>
        #pin(async move {
            #(#lets)*
            #reply
        })
    };
    quote! {
        #(#cfgs)*
        fn #glue #impl_generics (
            __pitaya_component: #p::Arc<#self_ty>,
            __pitaya_request: #p::Request,
        ) -> #p::HandlerFuture #where_clause {
            #future
        }
    }
}

/// `pub struct RoomRemote { client: RemoteClient }` and its methods.
fn remote_stub(model: &Component, stub: &Stub) -> TokenStream {
    let p = private(model);
    let Stub {
        ident,
        vis,
        component,
    } = stub;
    let doc = format!(
        "Typed client for the `#[remote]` methods of `{component}` (component `{}`), generated by `#[component]`.",
        model.name
    );
    let methods = model
        .routes
        .iter()
        .filter(|route| route.kind == RouteKind::Remote)
        .map(|route| stub_method(model, stub, route));
    quote! {
        #[doc = #doc]
        #[derive(#p::Clone, #p::Debug)]
        #vis struct #ident {
            client: #p::RemoteClient,
        }

        impl #ident {
            /// A client calling the remotes through `client`, whose target is
            /// the server type (or server) hosting the component.
            #vis fn new(client: #p::RemoteClient) -> Self {
                Self { client }
            }

            #(#methods)*
        }
    }
}

/// One `async fn` of the client stub.
fn stub_method(model: &Component, stub: &Stub, route: &Route) -> TokenStream {
    let p = private(model);
    let vis = &stub.vis;
    let name = &model.name;
    let method = &route.method;
    let ident = &route.ident;
    let cfgs = &route.cfgs;
    let docs = if route.docs.is_empty() {
        let doc = format!("Calls the `{name}.{method}` remote.");
        quote!(#[doc = #doc])
    } else {
        let docs = &route.docs;
        quote!(#(#docs)*)
    };
    let ok = match route.output.success_type() {
        Some(ty) => replace_self(ty, &model.self_ty),
        None => quote!(()),
    };
    // The call is spanned at the payload type (else the reply type): a type
    // that is not a protobuf message is reported there, not at the macro.
    let span = route
        .payload()
        .map(|payload| payload.ty.span())
        .or_else(|| route.output.success_type().map(Spanned::span))
        .unwrap_or_else(Span::call_site);
    let (param, request_ty, request) = match route.payload() {
        Some(payload) => {
            let param = payload
                .ident
                .clone()
                .unwrap_or_else(|| Ident::new("request", Span::call_site()));
            let ty = replace_self(&payload.ty, &model.self_ty);
            (quote!(, #param: &#ty), ty, quote!(#param))
        }
        None => (quote!(), quote!(()), quote!(&())),
    };
    let call = respan(quote!(#p::RemoteClient::call::<#request_ty, #ok>), span);
    quote! {
        #(#cfgs)*
        #docs
        #vis async fn #ident(&self #param) -> #p::Result<#ok, #p::PitayaError> {
            #call(&self.client, #name, #method, #request).await
        }
    }
}

/// The same tokens, all at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                tree = TokenTree::Group(new);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// Replaces `Self` in a type taken from the impl block by the component
/// type: generated free functions and the stub have another (or no) `Self`.
fn replace_self(ty: &impl ToTokens, self_ty: &Type) -> TokenStream {
    fn walk(tokens: TokenStream, self_ty: &Type) -> TokenStream {
        tokens
            .into_iter()
            .map(|tree| match tree {
                TokenTree::Ident(ident) if ident == "Self" => self_ty.to_token_stream(),
                TokenTree::Group(group) => {
                    let mut new = Group::new(group.delimiter(), walk(group.stream(), self_ty));
                    new.set_span(group.span());
                    TokenTree::Group(new).into_token_stream()
                }
                other => other.into_token_stream(),
            })
            .collect()
    }
    walk(ty.to_token_stream(), self_ty)
}
