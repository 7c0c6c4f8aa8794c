// Starts Swagger UI on /docs (a file, not an inline script: the page's policy allows none).
"use strict";
const el = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({url: el.dataset.spec, dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout", deepLinking: true});
