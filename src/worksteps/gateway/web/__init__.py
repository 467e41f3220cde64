"""The browser side of the gateway: session cookie, CSRF, sign-in routes, page rendering.

Page routers added later import :func:`~worksteps.gateway.web.guards.signed_in` for the user
and :func:`~worksteps.gateway.web.state.gateway_state` for ``pages.render``; the app applies
the session and CSRF guards to them.
"""
