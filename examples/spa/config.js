// Where the app finds Pasee. redirectUri must be listed, exactly, in
// Pasee's [cors] allowed_redirect_uris, and this page's origin in
// [cors] allowed_origins. Without redirectUri, the page's own address
// (without query) is used.
window.SPA_CONFIG = {
  pasee: "http://localhost:8150",
  // redirectUri: "http://localhost:8000/",
};
