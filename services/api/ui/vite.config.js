// The dashboard's build: Vue single-file components compiled ahead of time (no runtime
// template compiler, so the page runs under a CSP without 'unsafe-eval'), Element Plus
// components and their styles imported only where used, assets under /ui/.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import vue from "@vitejs/plugin-vue";
import Components from "unplugin-vue-components/vite";
import { ElementPlusResolver } from "unplugin-vue-components/resolvers";
import { defineConfig } from "vite";

const COMPONENTS = fileURLToPath(new URL("node_modules/element-plus/es/components", import.meta.url));

// Which component directory of Element Plus exports each `El*` name. Importing from the
// library's entry keeps every component in the build (its entry installs them all), so
// each component is imported from its own directory, with its own stylesheet.
function elementPlusEntries() {
  const entries = new Map();
  if (!existsSync(COMPONENTS)) return entries;
  for (const directory of readdirSync(COMPONENTS)) {
    const index = `${COMPONENTS}/${directory}/index.mjs`;
    if (!existsSync(index)) continue;
    for (const [, names] of readFileSync(index, "utf8").matchAll(/export \{([^}]*)\}/g)) {
      for (const name of names.split(",").map((item) => item.trim().split(/\s+as\s+/).pop())) {
        if (/^El[A-Z]/.test(name) && !entries.has(name)) entries.set(name, directory);
      }
    }
  }
  return entries;
}

function elementPlusComponents() {
  const resolver = ElementPlusResolver({ importStyle: "css" }).find((item) => item.type === "component");
  const entries = elementPlusEntries();
  return {
    type: "component",
    resolve: async (name) => {
      const resolved = await resolver.resolve(name);
      if (!resolved || typeof resolved === "string") return resolved;
      const directory = entries.get(resolved.name);
      return directory ? { ...resolved, from: `element-plus/es/components/${directory}/index.mjs` } : resolved;
    },
  };
}

export default defineConfig({
  base: "/ui/",
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [
    vue(),
    Components({ dts: false, resolvers: [elementPlusComponents()] }),
  ],
  define: {
    __VUE_OPTIONS_API__: "false",
    __VUE_PROD_DEVTOOLS__: "false",
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false",
    __VUE_I18N_FULL_INSTALL__: "false",
    __VUE_I18N_LEGACY_API__: "false",
    __INTLIFY_PROD_DEVTOOLS__: "false",
    __INTLIFY_JIT_COMPILATION__: "true",
    __INTLIFY_DROP_MESSAGE_COMPILER__: "false",
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      output: {
        manualChunks(id) {
          if (id.includes("node_modules/echarts") || id.includes("node_modules/zrender")) {
            return "charts";
          }
          if (id.includes("node_modules/element-plus") || id.includes("node_modules/@element-plus")) {
            return "element";
          }
          if (id.includes("node_modules")) {
            return "vendor";
          }
          return undefined;
        },
      },
    },
  },
});
