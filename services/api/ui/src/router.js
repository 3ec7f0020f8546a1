// The page's views; the service answers every one of these paths with index.html.
import { createRouter, createWebHistory } from "vue-router";
import { session } from "./api.js";
import CaseView from "./views/CaseView.vue";
import DepartmentView from "./views/DepartmentView.vue";
import LoginView from "./views/LoginView.vue";
import NotFoundView from "./views/NotFoundView.vue";
import OverviewView from "./views/OverviewView.vue";

export const router = createRouter({
  history: createWebHistory("/"),
  routes: [
    { path: "/", name: "overview", component: OverviewView },
    { path: "/login", name: "login", component: LoginView, meta: { open: true } },
    { path: "/hospitals/:hospital/departments/:code", name: "department", component: DepartmentView, props: true },
    { path: "/hospitals/:hospital/cases/:caseId", name: "case", component: CaseView, props: true },
    { path: "/:rest(.*)*", name: "not-found", component: NotFoundView, meta: { open: true } },
  ],
  scrollBehavior: () => ({ top: 0 }),
});

router.beforeEach((to) => {
  if (to.meta.open) return true;
  if (session.signInRequired && !session.signedIn) {
    return { name: "login", query: { next: to.fullPath } };
  }
  return true;
});

window.addEventListener("drgwatch:signed-out", () => {
  const current = router.currentRoute.value;
  if (current.name !== "login") router.push({ name: "login", query: { next: current.fullPath } });
});
