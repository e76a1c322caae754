// When the session has expired (8 h) or the user was disabled, Dash requests answer 401.
// Instead of leaving a page that silently stops updating, go to the sign-in form and come
// back to the same page afterwards.
(function () {
  "use strict";
  var originalFetch = window.fetch;
  function prefix() {
    var config = document.getElementById("_dash-config");
    try {
      return JSON.parse(config.textContent).requests_pathname_prefix || "/";
    } catch (error) {
      return "/";
    }
  }
  window.fetch = function () {
    return originalFetch.apply(this, arguments).then(function (response) {
      if (response.status === 401 && String(response.url).indexOf("/_dash-") !== -1) {
        var next = window.location.pathname + window.location.search;
        window.location.assign(prefix() + "login?next=" + encodeURIComponent(next));
      }
      return response;
    });
  };
})();
