// The project's version, named once: package.json's, which `npm run image` also tags the image with.
import packageJson from "../package.json" with { type: "json" };

export const VERSION: string = packageJson.version;
