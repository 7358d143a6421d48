// The interactive API reference at /api/docs: the vendored Swagger UI reading our OpenAPI document.
// A file (not an inline script) so the page keeps the strict CSP of the rest of the product.
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
