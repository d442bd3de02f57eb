"""The API's declarations (`routes`), the answers' shapes (`components`) and the OpenAPI
document derived from both (`document`). Empty on purpose: importing `routes` at cold start
must not import the rest."""
