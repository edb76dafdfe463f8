/* The API documentation page (/api/docs): Swagger UI, from django-ninja's copy served with our static files.
 * Only reading requests can be tried here: a page of documentation must not raise a real alarm. */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) { return; }
  window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    supportedSubmitMethods: ["get"],
    docExpansion: "list",
    defaultModelsExpandDepth: 0
  });
})();
