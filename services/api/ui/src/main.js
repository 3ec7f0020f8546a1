import "element-plus/theme-chalk/base.css";
import "element-plus/theme-chalk/el-message.css";
import "element-plus/theme-chalk/el-message-box.css";
import "./page.css";
import { createApp } from "vue";
import App from "./App.vue";
import { loadSession } from "./api.js";
import { i18n, rememberLocale } from "./i18n.js";
import { router } from "./router.js";

rememberLocale(i18n.global.locale.value);
loadSession().finally(() => {
  createApp(App).use(i18n).use(router).mount("#app");
});
