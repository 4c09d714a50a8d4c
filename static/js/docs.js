// Swagger UI on our own /openapi.json, from vendored assets (no CDN).
window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
