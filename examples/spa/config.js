// Where the app finds Pasee (its OpenID issuer) and who it is there.
// Pasee's settings need this app as a public client:
//
//   [[clients]]
//   id = "example-spa"
//   name = "Example app"
//   redirect_uris = ["http://localhost:8000/"]
//   post_logout_redirect_uris = ["http://localhost:8000/"]
//
//   [cors]
//   allowed_origins = ["http://localhost:8000"]
//
// Without redirectUri, the page's own address (without query) is used; it
// must be listed, exactly, in both redirect_uris and
// post_logout_redirect_uris.
window.SPA_CONFIG = {
  pasee: "http://localhost:8150",
  clientId: "example-spa",
  // redirectUri: "http://localhost:8000/",
  // renewBeforeSeconds: 60,   // renew the access token this long before it expires
};
