// Placeholder until the app exists: shows the sign-in button of /app/signin.
const button = document.createElement("button");
button.id = "signin";
button.type = "button";
button.textContent = "Sign in";
document.getElementById("app").append(button);
