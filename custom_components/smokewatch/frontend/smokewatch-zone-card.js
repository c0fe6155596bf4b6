var D=globalThis,B=D.ShadowRoot&&(D.ShadyCSS===void 0||D.ShadyCSS.nativeShadow)&&"adoptedStyleSheets"in Document.prototype&&"replace"in CSSStyleSheet.prototype,j=Symbol(),ct=new WeakMap,P=class{constructor(t,e,s){if(this._$cssResult$=!0,s!==j)throw Error("CSSResult is not constructable. Use `unsafeCSS` or `css` instead.");this.cssText=t,this.t=e}get styleSheet(){let t=this.o,e=this.t;if(B&&t===void 0){let s=e!==void 0&&e.length===1;s&&(t=ct.get(e)),t===void 0&&((this.o=t=new CSSStyleSheet).replaceSync(this.cssText),s&&ct.set(e,t))}return t}toString(){return this.cssText}},ut=n=>new P(typeof n=="string"?n:n+"",void 0,j),W=(n,...t)=>{let e=n.length===1?n[0]:t.reduce((s,i,r)=>s+(o=>{if(o._$cssResult$===!0)return o.cssText;if(typeof o=="number")return o;throw Error("Value passed to 'css' function must be a 'css' function result: "+o+". Use 'unsafeCSS' to pass non-literal values, but take care to ensure page security.")})(i)+n[r+1],n[0]);return new P(e,n,j)},pt=(n,t)=>{if(B)n.adoptedStyleSheets=t.map(e=>e instanceof CSSStyleSheet?e:e.styleSheet);else for(let e of t){let s=document.createElement("style"),i=D.litNonce;i!==void 0&&s.setAttribute("nonce",i),s.textContent=e.cssText,n.appendChild(s)}},Z=B?n=>n:n=>n instanceof CSSStyleSheet?(t=>{let e="";for(let s of t.cssRules)e+=s.cssText;return ut(e)})(n):n;var{is:qt,defineProperty:It,getOwnPropertyDescriptor:Lt,getOwnPropertyNames:jt,getOwnPropertySymbols:Wt,getPrototypeOf:Zt}=Object,N=globalThis,mt=N.trustedTypes,Ft=mt?mt.emptyScript:"",Vt=N.reactiveElementPolyfillSupport,C=(n,t)=>n,F={toAttribute(n,t){switch(t){case Boolean:n=n?Ft:null;break;case Object:case Array:n=n==null?n:JSON.stringify(n)}return n},fromAttribute(n,t){let e=n;switch(t){case Boolean:e=n!==null;break;case Number:e=n===null?null:Number(n);break;case Object:case Array:try{e=JSON.parse(n)}catch{e=null}}return e}},ft=(n,t)=>!qt(n,t),gt={attribute:!0,type:String,converter:F,reflect:!1,useDefault:!1,hasChanged:ft};Symbol.metadata??=Symbol("metadata"),N.litPropertyMetadata??=new WeakMap;var f=class extends HTMLElement{static addInitializer(t){this._$Ei(),(this.l??=[]).push(t)}static get observedAttributes(){return this.finalize(),this._$Eh&&[...this._$Eh.keys()]}static createProperty(t,e=gt){if(e.state&&(e.attribute=!1),this._$Ei(),this.prototype.hasOwnProperty(t)&&((e=Object.create(e)).wrapped=!0),this.elementProperties.set(t,e),!e.noAccessor){let s=Symbol(),i=this.getPropertyDescriptor(t,s,e);i!==void 0&&It(this.prototype,t,i)}}static getPropertyDescriptor(t,e,s){let{get:i,set:r}=Lt(this.prototype,t)??{get(){return this[e]},set(o){this[e]=o}};return{get:i,set(o){let h=i?.call(this);r?.call(this,o),this.requestUpdate(t,h,s)},configurable:!0,enumerable:!0}}static getPropertyOptions(t){return this.elementProperties.get(t)??gt}static _$Ei(){if(this.hasOwnProperty(C("elementProperties")))return;let t=Zt(this);t.finalize(),t.l!==void 0&&(this.l=[...t.l]),this.elementProperties=new Map(t.elementProperties)}static finalize(){if(this.hasOwnProperty(C("finalized")))return;if(this.finalized=!0,this._$Ei(),this.hasOwnProperty(C("properties"))){let e=this.properties,s=[...jt(e),...Wt(e)];for(let i of s)this.createProperty(i,e[i])}let t=this[Symbol.metadata];if(t!==null){let e=litPropertyMetadata.get(t);if(e!==void 0)for(let[s,i]of e)this.elementProperties.set(s,i)}this._$Eh=new Map;for(let[e,s]of this.elementProperties){let i=this._$Eu(e,s);i!==void 0&&this._$Eh.set(i,e)}this.elementStyles=this.finalizeStyles(this.styles)}static finalizeStyles(t){let e=[];if(Array.isArray(t)){let s=new Set(t.flat(1/0).reverse());for(let i of s)e.unshift(Z(i))}else t!==void 0&&e.push(Z(t));return e}static _$Eu(t,e){let s=e.attribute;return s===!1?void 0:typeof s=="string"?s:typeof t=="string"?t.toLowerCase():void 0}constructor(){super(),this._$Ep=void 0,this.isUpdatePending=!1,this.hasUpdated=!1,this._$Em=null,this._$Ev()}_$Ev(){this._$ES=new Promise(t=>this.enableUpdating=t),this._$AL=new Map,this._$E_(),this.requestUpdate(),this.constructor.l?.forEach(t=>t(this))}addController(t){(this._$EO??=new Set).add(t),this.renderRoot!==void 0&&this.isConnected&&t.hostConnected?.()}removeController(t){this._$EO?.delete(t)}_$E_(){let t=new Map,e=this.constructor.elementProperties;for(let s of e.keys())this.hasOwnProperty(s)&&(t.set(s,this[s]),delete this[s]);t.size>0&&(this._$Ep=t)}createRenderRoot(){let t=this.shadowRoot??this.attachShadow(this.constructor.shadowRootOptions);return pt(t,this.constructor.elementStyles),t}connectedCallback(){this.renderRoot??=this.createRenderRoot(),this.enableUpdating(!0),this._$EO?.forEach(t=>t.hostConnected?.())}enableUpdating(t){}disconnectedCallback(){this._$EO?.forEach(t=>t.hostDisconnected?.())}attributeChangedCallback(t,e,s){this._$AK(t,s)}_$ET(t,e){let s=this.constructor.elementProperties.get(t),i=this.constructor._$Eu(t,s);if(i!==void 0&&s.reflect===!0){let r=(s.converter?.toAttribute!==void 0?s.converter:F).toAttribute(e,s.type);this._$Em=t,r==null?this.removeAttribute(i):this.setAttribute(i,r),this._$Em=null}}_$AK(t,e){let s=this.constructor,i=s._$Eh.get(t);if(i!==void 0&&this._$Em!==i){let r=s.getPropertyOptions(i),o=typeof r.converter=="function"?{fromAttribute:r.converter}:r.converter?.fromAttribute!==void 0?r.converter:F;this._$Em=i;let h=o.fromAttribute(e,r.type);this[i]=h??this._$Ej?.get(i)??h,this._$Em=null}}requestUpdate(t,e,s,i=!1,r){if(t!==void 0){let o=this.constructor;if(i===!1&&(r=this[t]),s??=o.getPropertyOptions(t),!((s.hasChanged??ft)(r,e)||s.useDefault&&s.reflect&&r===this._$Ej?.get(t)&&!this.hasAttribute(o._$Eu(t,s))))return;this.C(t,e,s)}this.isUpdatePending===!1&&(this._$ES=this._$EP())}C(t,e,{useDefault:s,reflect:i,wrapped:r},o){s&&!(this._$Ej??=new Map).has(t)&&(this._$Ej.set(t,o??e??this[t]),r!==!0||o!==void 0)||(this._$AL.has(t)||(this.hasUpdated||s||(e=void 0),this._$AL.set(t,e)),i===!0&&this._$Em!==t&&(this._$Eq??=new Set).add(t))}async _$EP(){this.isUpdatePending=!0;try{await this._$ES}catch(e){Promise.reject(e)}let t=this.scheduleUpdate();return t!=null&&await t,!this.isUpdatePending}scheduleUpdate(){return this.performUpdate()}performUpdate(){if(!this.isUpdatePending)return;if(!this.hasUpdated){if(this.renderRoot??=this.createRenderRoot(),this._$Ep){for(let[i,r]of this._$Ep)this[i]=r;this._$Ep=void 0}let s=this.constructor.elementProperties;if(s.size>0)for(let[i,r]of s){let{wrapped:o}=r,h=this[i];o!==!0||this._$AL.has(i)||h===void 0||this.C(i,void 0,r,h)}}let t=!1,e=this._$AL;try{t=this.shouldUpdate(e),t?(this.willUpdate(e),this._$EO?.forEach(s=>s.hostUpdate?.()),this.update(e)):this._$EM()}catch(s){throw t=!1,this._$EM(),s}t&&this._$AE(e)}willUpdate(t){}_$AE(t){this._$EO?.forEach(e=>e.hostUpdated?.()),this.hasUpdated||(this.hasUpdated=!0,this.firstUpdated(t)),this.updated(t)}_$EM(){this._$AL=new Map,this.isUpdatePending=!1}get updateComplete(){return this.getUpdateComplete()}getUpdateComplete(){return this._$ES}shouldUpdate(t){return!0}update(t){this._$Eq&&=this._$Eq.forEach(e=>this._$ET(e,this[e])),this._$EM()}updated(t){}firstUpdated(t){}};f.elementStyles=[],f.shadowRootOptions={mode:"open"},f[C("elementProperties")]=new Map,f[C("finalized")]=new Map,Vt?.({ReactiveElement:f}),(N.reactiveElementVersions??=[]).push("2.1.2");var Q=globalThis,yt=n=>n,q=Q.trustedTypes,$t=q?q.createPolicy("lit-html",{createHTML:n=>n}):void 0,wt="$lit$",$=`lit$${Math.random().toFixed(9).slice(2)}$`,Et="?"+$,Kt=`<${Et}>`,A=document,U=()=>A.createComment(""),R=n=>n===null||typeof n!="object"&&typeof n!="function",tt=Array.isArray,Jt=n=>tt(n)||typeof n?.[Symbol.iterator]=="function",V=`[ 	
\f\r]`,z=/<(?:(!--|\/[^a-zA-Z])|(\/?[a-zA-Z][^>\s]*)|(\/?$))/g,bt=/-->/g,vt=/>/g,_=RegExp(`>|${V}(?:([^\\s"'>=/]+)(${V}*=${V}*(?:[^ 	
\f\r"'\`<>=]|("|')|))|$)`,"g"),_t=/'/g,xt=/"/g,St=/^(?:script|style|textarea|title)$/i,et=n=>(t,...e)=>({_$litType$:n,strings:t,values:e}),p=et(1),E=et(2),oe=et(3),w=Symbol.for("lit-noChange"),c=Symbol.for("lit-nothing"),At=new WeakMap,x=A.createTreeWalker(A,129);function kt(n,t){if(!tt(n)||!n.hasOwnProperty("raw"))throw Error("invalid template strings array");return $t!==void 0?$t.createHTML(t):t}var Gt=(n,t)=>{let e=n.length-1,s=[],i,r=t===2?"<svg>":t===3?"<math>":"",o=z;for(let h=0;h<e;h++){let a=n[h],l,u,d=-1,g=0;for(;g<a.length&&(o.lastIndex=g,u=o.exec(a),u!==null);)g=o.lastIndex,o===z?u[1]==="!--"?o=bt:u[1]!==void 0?o=vt:u[2]!==void 0?(St.test(u[2])&&(i=RegExp("</"+u[2],"g")),o=_):u[3]!==void 0&&(o=_):o===_?u[0]===">"?(o=i??z,d=-1):u[1]===void 0?d=-2:(d=o.lastIndex-u[2].length,l=u[1],o=u[3]===void 0?_:u[3]==='"'?xt:_t):o===xt||o===_t?o=_:o===bt||o===vt?o=z:(o=_,i=void 0);let y=o===_&&n[h+1].startsWith("/>")?" ":"";r+=o===z?a+Kt:d>=0?(s.push(l),a.slice(0,d)+wt+a.slice(d)+$+y):a+$+(d===-2?h:y)}return[kt(n,r+(n[e]||"<?>")+(t===2?"</svg>":t===3?"</math>":"")),s]},M=class n{constructor({strings:t,_$litType$:e},s){let i;this.parts=[];let r=0,o=0,h=t.length-1,a=this.parts,[l,u]=Gt(t,e);if(this.el=n.createElement(l,s),x.currentNode=this.el.content,e===2||e===3){let d=this.el.content.firstChild;d.replaceWith(...d.childNodes)}for(;(i=x.nextNode())!==null&&a.length<h;){if(i.nodeType===1){if(i.hasAttributes())for(let d of i.getAttributeNames())if(d.endsWith(wt)){let g=u[o++],y=i.getAttribute(d).split($),T=/([.?@])?(.*)/.exec(g);a.push({type:1,index:r,name:T[2],strings:y,ctor:T[1]==="."?J:T[1]==="?"?G:T[1]==="@"?Y:k}),i.removeAttribute(d)}else d.startsWith($)&&(a.push({type:6,index:r}),i.removeAttribute(d));if(St.test(i.tagName)){let d=i.textContent.split($),g=d.length-1;if(g>0){i.textContent=q?q.emptyScript:"";for(let y=0;y<g;y++)i.append(d[y],U()),x.nextNode(),a.push({type:2,index:++r});i.append(d[g],U())}}}else if(i.nodeType===8)if(i.data===Et)a.push({type:2,index:r});else{let d=-1;for(;(d=i.data.indexOf($,d+1))!==-1;)a.push({type:7,index:r}),d+=$.length-1}r++}}static createElement(t,e){let s=A.createElement("template");return s.innerHTML=t,s}};function S(n,t,e=n,s){if(t===w)return t;let i=s!==void 0?e._$Co?.[s]:e._$Cl,r=R(t)?void 0:t._$litDirective$;return i?.constructor!==r&&(i?._$AO?.(!1),r===void 0?i=void 0:(i=new r(n),i._$AT(n,e,s)),s!==void 0?(e._$Co??=[])[s]=i:e._$Cl=i),i!==void 0&&(t=S(n,i._$AS(n,t.values),i,s)),t}var K=class{constructor(t,e){this._$AV=[],this._$AN=void 0,this._$AD=t,this._$AM=e}get parentNode(){return this._$AM.parentNode}get _$AU(){return this._$AM._$AU}u(t){let{el:{content:e},parts:s}=this._$AD,i=(t?.creationScope??A).importNode(e,!0);x.currentNode=i;let r=x.nextNode(),o=0,h=0,a=s[0];for(;a!==void 0;){if(o===a.index){let l;a.type===2?l=new H(r,r.nextSibling,this,t):a.type===1?l=new a.ctor(r,a.name,a.strings,this,t):a.type===6&&(l=new X(r,this,t)),this._$AV.push(l),a=s[++h]}o!==a?.index&&(r=x.nextNode(),o++)}return x.currentNode=A,i}p(t){let e=0;for(let s of this._$AV)s!==void 0&&(s.strings!==void 0?(s._$AI(t,s,e),e+=s.strings.length-2):s._$AI(t[e])),e++}},H=class n{get _$AU(){return this._$AM?._$AU??this._$Cv}constructor(t,e,s,i){this.type=2,this._$AH=c,this._$AN=void 0,this._$AA=t,this._$AB=e,this._$AM=s,this.options=i,this._$Cv=i?.isConnected??!0}get parentNode(){let t=this._$AA.parentNode,e=this._$AM;return e!==void 0&&t?.nodeType===11&&(t=e.parentNode),t}get startNode(){return this._$AA}get endNode(){return this._$AB}_$AI(t,e=this){t=S(this,t,e),R(t)?t===c||t==null||t===""?(this._$AH!==c&&this._$AR(),this._$AH=c):t!==this._$AH&&t!==w&&this._(t):t._$litType$!==void 0?this.$(t):t.nodeType!==void 0?this.T(t):Jt(t)?this.k(t):this._(t)}O(t){return this._$AA.parentNode.insertBefore(t,this._$AB)}T(t){this._$AH!==t&&(this._$AR(),this._$AH=this.O(t))}_(t){this._$AH!==c&&R(this._$AH)?this._$AA.nextSibling.data=t:this.T(A.createTextNode(t)),this._$AH=t}$(t){let{values:e,_$litType$:s}=t,i=typeof s=="number"?this._$AC(t):(s.el===void 0&&(s.el=M.createElement(kt(s.h,s.h[0]),this.options)),s);if(this._$AH?._$AD===i)this._$AH.p(e);else{let r=new K(i,this),o=r.u(this.options);r.p(e),this.T(o),this._$AH=r}}_$AC(t){let e=At.get(t.strings);return e===void 0&&At.set(t.strings,e=new M(t)),e}k(t){tt(this._$AH)||(this._$AH=[],this._$AR());let e=this._$AH,s,i=0;for(let r of t)i===e.length?e.push(s=new n(this.O(U()),this.O(U()),this,this.options)):s=e[i],s._$AI(r),i++;i<e.length&&(this._$AR(s&&s._$AB.nextSibling,i),e.length=i)}_$AR(t=this._$AA.nextSibling,e){for(this._$AP?.(!1,!0,e);t!==this._$AB;){let s=yt(t).nextSibling;yt(t).remove(),t=s}}setConnected(t){this._$AM===void 0&&(this._$Cv=t,this._$AP?.(t))}},k=class{get tagName(){return this.element.tagName}get _$AU(){return this._$AM._$AU}constructor(t,e,s,i,r){this.type=1,this._$AH=c,this._$AN=void 0,this.element=t,this.name=e,this._$AM=i,this.options=r,s.length>2||s[0]!==""||s[1]!==""?(this._$AH=Array(s.length-1).fill(new String),this.strings=s):this._$AH=c}_$AI(t,e=this,s,i){let r=this.strings,o=!1;if(r===void 0)t=S(this,t,e,0),o=!R(t)||t!==this._$AH&&t!==w,o&&(this._$AH=t);else{let h=t,a,l;for(t=r[0],a=0;a<r.length-1;a++)l=S(this,h[s+a],e,a),l===w&&(l=this._$AH[a]),o||=!R(l)||l!==this._$AH[a],l===c?t=c:t!==c&&(t+=(l??"")+r[a+1]),this._$AH[a]=l}o&&!i&&this.j(t)}j(t){t===c?this.element.removeAttribute(this.name):this.element.setAttribute(this.name,t??"")}},J=class extends k{constructor(){super(...arguments),this.type=3}j(t){this.element[this.name]=t===c?void 0:t}},G=class extends k{constructor(){super(...arguments),this.type=4}j(t){this.element.toggleAttribute(this.name,!!t&&t!==c)}},Y=class extends k{constructor(t,e,s,i,r){super(t,e,s,i,r),this.type=5}_$AI(t,e=this){if((t=S(this,t,e,0)??c)===w)return;let s=this._$AH,i=t===c&&s!==c||t.capture!==s.capture||t.once!==s.once||t.passive!==s.passive,r=t!==c&&(s===c||i);i&&this.element.removeEventListener(this.name,this,s),r&&this.element.addEventListener(this.name,this,t),this._$AH=t}handleEvent(t){typeof this._$AH=="function"?this._$AH.call(this.options?.host??this.element,t):this._$AH.handleEvent(t)}},X=class{constructor(t,e,s){this.element=t,this.type=6,this._$AN=void 0,this._$AM=e,this.options=s}get _$AU(){return this._$AM._$AU}_$AI(t){S(this,t)}};var Yt=Q.litHtmlPolyfillSupport;Yt?.(M,H),(Q.litHtmlVersions??=[]).push("3.3.3");var Pt=(n,t,e)=>{let s=e?.renderBefore??t,i=s._$litPart$;if(i===void 0){let r=e?.renderBefore??null;s._$litPart$=i=new H(t.insertBefore(U(),r),r,void 0,e??{})}return i._$AI(n),i};var st=globalThis,b=class extends f{constructor(){super(...arguments),this.renderOptions={host:this},this._$Do=void 0}createRenderRoot(){let t=super.createRenderRoot();return this.renderOptions.renderBefore??=t.firstChild,t}update(t){let e=this.render();this.hasUpdated||(this.renderOptions.isConnected=this.isConnected),super.update(t),this._$Do=Pt(e,this.renderRoot,this.renderOptions)}connectedCallback(){super.connectedCallback(),this._$Do?.setConnected(!0)}disconnectedCallback(){super.disconnectedCallback(),this._$Do?.setConnected(!1)}render(){return w}};b._$litElement$=!0,b.finalized=!0,st.litElementHydrateSupport?.({LitElement:b});var Xt=st.litElementPolyfillSupport;Xt?.({LitElement:b});(st.litElementVersions??=[]).push("4.2.2");function it(n){return Math.min(1,Math.max(0,n))}function m(n){return Math.round(n*1e4)/1e4}function nt(n){if(n.length<3)return 0;let t=0;for(let e=0;e<n.length;e++){let[s,i]=n[e],[r,o]=n[(e+1)%n.length];t+=s*o-r*i}return Math.abs(t)/2}function Ct([n,t],e){let s=!1;for(let i=0,r=e.length-1;i<e.length;r=i++){let[o,h]=e[i],[a,l]=e[r];h>t!=l>t&&n<(a-o)*(t-h)/(l-h)+o&&(s=!s)}return s}function zt(n,t,e){return e.width<=0||e.height<=0?[0,0]:[m(it((n-e.left)/e.width)),m(it((t-e.top)/e.height))]}function Ut(n){let[t,e,s,i]=n.slice(0,4).map(r=>m(it(r)));return[[t,e],[s,e],[s,i],[t,i]]}function rt(n){return n.length>=4&&n[0]<n[2]&&n[1]<n[3]}function ot(n,t,e,s=1){let i=-1,r=e;return n.forEach(([o,h],a)=>{let l=Math.hypot((o-t[0])*s,h-t[1]);l<=r&&(i=a,r=l)}),i}function Rt(n,t,e=.005){return[0,1,2,3].every(s=>Math.abs(n[s]-t[s])<=e)}var at=["inside","iou"];function L(n){if(!Array.isArray(n))return[];let t=[];for(let e of n){if(typeof e!="object"||e===null)continue;let{name:s,polygon:i,rule:r,enabled:o}=e;if(typeof s!="string"||!Array.isArray(i))continue;let h=i.filter(a=>Array.isArray(a)&&a.length===2&&a.every(l=>typeof l=="number"));h.length<3||t.push({name:s,polygon:h.map(([a,l])=>[a,l]),rule:r==="iou"?"iou":"inside",enabled:o!==!1})}return t}function Mt(n,t){let e=new Set(t);if(!e.has(n))return n;for(let s=2;;s++){let i=`${n} ${s}`;if(!e.has(i))return i}}function Qt(n){let t=e=>String(e).padStart(2,"0");return`${n.getFullYear()}-${t(n.getMonth()+1)}-${t(n.getDate())} ${t(n.getHours())}:${t(n.getMinutes())}`}function te(n){let t=[],e=new Set;return n.forEach((s,i)=>{let r=s.name.trim()||`zone ${i+1}`;s.name.trim()?e.has(s.name.trim())&&t.push(`${r}: another zone has this name`):t.push(`${r}: give it a name`),e.add(s.name.trim()),s.polygon.length<3?t.push(`${r}: needs at least 3 points`):nt(s.polygon)<=0&&t.push(`${r}: its points enclose no area`)}),t}var I=class{constructor(){this.zones=[];this.drawing=null;this.selected=null;this.dirty=!1}load(t,e=!1){this.dirty&&!e||(this.zones=t.map(s=>({...s,polygon:s.polygon.map(([i,r])=>[i,r])})),this.dirty=!1,this.selected&&this.selected.zone>=this.zones.length&&(this.selected=null))}startDrawing(){this.drawing=[],this.selected=null}cancelDrawing(){this.drawing=null}addPoint(t){this.drawing!==null&&this.drawing.push([m(t[0]),m(t[1])])}undoPoint(){this.drawing?.pop()}get canFinish(){return this.drawing!==null&&nt(this.drawing)>0}finishDrawing(t="zone"){if(this.drawing===null||!this.canFinish)return-1;let e={name:Mt(t,this.zones.map(s=>s.name)),polygon:this.drawing,rule:"inside",enabled:!0};return this.zones.push(e),this.drawing=null,this.dirty=!0,this.selected={zone:this.zones.length-1,point:null},this.zones.length-1}select(t,e=null){this.selected=t===null?null:{zone:t,point:e}}movePoint(t,e,s){let i=this.zones[t]?.polygon;!i||e<0||e>=i.length||(i[e]=[m(s[0]),m(s[1])],this.dirty=!0)}deletePoint(t,e){let s=this.zones[t]?.polygon;return!s||s.length<=3||e<0||e>=s.length?!1:(s.splice(e,1),this.dirty=!0,this.selected={zone:t,point:null},!0)}insertPoint(t,e){let s=this.zones[t]?.polygon;if(!s||e<0||e>=s.length)return;let[i,r]=s[e],[o,h]=s[(e+1)%s.length];s.splice(e+1,0,[m((i+o)/2),m((r+h)/2)]),this.dirty=!0,this.selected={zone:t,point:e+1}}rename(t,e){this.zones[t]&&(this.zones[t].name=e,this.dirty=!0)}setRule(t,e){!this.zones[t]||!at.includes(e)||(this.zones[t].rule=e,this.dirty=!0)}setEnabled(t,e){this.zones[t]&&(this.zones[t].enabled=e,this.dirty=!0)}deleteZone(t){this.zones[t]&&(this.zones.splice(t,1),this.selected=null,this.dirty=!0)}maskBox(t,e=new Date){if(!rt(t))return-1;let s=Mt(`masked ${Qt(e)}`,this.zones.map(i=>i.name));return this.zones.push({name:s,polygon:Ut(t),rule:"iou",enabled:!0}),this.dirty=!0,this.selected={zone:this.zones.length-1,point:null},this.zones.length-1}get errors(){return te(this.zones)}serviceData(){let t=this.errors;if(t.length)throw new Error(t.join("; "));return{zones:this.zones.map(e=>({name:e.name.trim(),polygon:e.polygon.map(([s,i])=>[m(s),m(i)]),rule:e.rule,enabled:e.enabled}))}}saved(){this.dirty=!1}};function ht(n,t,e=10){let s=[],i=r=>{!Array.isArray(r)||r.length<4||!r.every(o=>typeof o=="number")||rt(r)&&(s.some(o=>Rt(o,r))||s.push(r.slice(0,5)))};if(n){for(let r of Ht(n.boxes))i(r);for(let r of Ht(n.dropped))r&&typeof r=="object"&&r.reason!=="mask"&&i(r.box)}for(let r of t)i(r);return s.slice(0,e)}function Ht(n){return Array.isArray(n)?n:[]}var v=1e3,lt=11,Ot=10;function dt(n,t,e,s){let i=n.entities?.[t]?.device_id;if(i&&n.entities){for(let h of Object.values(n.entities))if(h.device_id===i&&h.entity_id.startsWith(`${e}.`)&&h.entity_id.endsWith(s))return h.entity_id}let r=t.replace(/^binary_sensor\./,"").replace(/_smoke$/,""),o=`${e}.${r}${s}`;return n.states[o]?o:void 0}var O=class extends b{constructor(){super(...arguments);this.editor=new I;this.history=[];this.lastBoxesKey="";this.aspect=9/16;this.displayedWidth=0;this.drag=null;this.boxMenu=null;this.message=null;this.saving=!1}setConfig(e){if(!e||typeof e.entity!="string"||!e.entity.startsWith("binary_sensor."))throw new Error("Set 'entity' to the camera's smoke binary_sensor (binary_sensor.<camera>_smoke)");this._config=e,this.requestUpdate()}set hass(e){this._hass=e,this.sync(),this.requestUpdate()}get hass(){return this._hass}getCardSize(){return 8}static getStubConfig(e){return{entity:Object.values(e.states).find(i=>i.entity_id.startsWith("binary_sensor.")&&i.attributes.device_class==="smoke")?.entity_id??"binary_sensor.backyard_smoke"}}get imageEntity(){if(!(!this._hass||!this._config))return this._config.image_entity??dt(this._hass,this._config.entity,"image","_scored_frame")??dt(this._hass,this._config.entity,"image","_alert_image")}get masksEntity(){if(!(!this._hass||!this._config))return this._config.masks_entity??dt(this._hass,this._config.entity,"sensor","_masks")}sync(){if(!this._hass||!this._config)return;let e=this.masksEntity?this._hass.states[this.masksEntity]:void 0;if(e){let o=JSON.stringify(this.editor.zones);this.editor.load(L(e.attributes.local)),!this.saving&&JSON.stringify(this.editor.zones)!==o&&this.message&&!this.message.error&&(this.message=null)}let i=this._hass.states[this._config.entity]?.attributes.boxes,r=JSON.stringify(i??null);Array.isArray(i)&&r!==this.lastBoxesKey&&(this.lastBoxesKey=r,this.history=ht({boxes:i},this.history,Ot))}get remoteZones(){let e=this.masksEntity&&this._hass?this._hass.states[this.masksEntity]:void 0;return e?L(e.attributes.remote):[]}get boxes(){let e=this._config&&this._hass?.states[this._config.entity];return ht(e?e.attributes:void 0,this.history,Ot)}connectedCallback(){super.connectedCallback(),this.resizeObserver=new ResizeObserver(e=>{let s=e[0]?.contentRect.width??0;Math.abs(s-this.displayedWidth)>1&&(this.displayedWidth=s,this.requestUpdate())})}disconnectedCallback(){super.disconnectedCallback(),this.resizeObserver?.disconnect()}firstUpdated(e){let s=this.renderRoot.querySelector(".frame");s&&this.resizeObserver?.observe(s)}svgPoint(e){let s=this.renderRoot.querySelector("svg");return zt(e.clientX,e.clientY,s.getBoundingClientRect())}get handleRadius(){let e=this.displayedWidth||320;return lt/(e*this.aspect)}onFramePointerDown(e){let s=this.svgPoint(e);this.boxMenu=null;let i=this.editor.drawing;if(i!==null){(i.length>=3?ot([i[0]],s,this.handleRadius,1/this.aspect):-1)===0?this.finishDrawing():this.editor.addPoint(s),this.requestUpdate();return}let r=this.editor.selected;if(r){let a=this.editor.zones[r.zone],l=a?ot(a.polygon,s,this.handleRadius*1.5,1/this.aspect):-1;if(l>=0){this.editor.select(r.zone,l),this.drag={zone:r.zone,point:l,pointer:e.pointerId},e.currentTarget.setPointerCapture?.(e.pointerId),this.requestUpdate();return}}let o=this.boxes.findIndex(([a,l,u,d])=>s[0]>=a&&s[0]<=u&&s[1]>=l&&s[1]<=d);if(o>=0){this.boxMenu=o,this.requestUpdate();return}let h=this.editor.zones.findIndex(a=>Ct(s,a.polygon));this.editor.select(h>=0?h:null),this.requestUpdate()}onFramePointerMove(e){!this.drag||e.pointerId!==this.drag.pointer||(this.editor.movePoint(this.drag.zone,this.drag.point,this.svgPoint(e)),this.requestUpdate())}onFramePointerUp(e){this.drag&&e.pointerId===this.drag.pointer&&(this.drag=null,this.requestUpdate())}finishDrawing(){let e=this.editor.finishDrawing("zone");e<0?this.note("A zone needs at least 3 points that enclose an area",!0):this.note(`${this.editor.zones[e].name} added: name it, then Save`,!1)}note(e,s){this.message={text:e,error:s},this.requestUpdate()}async save(){if(!this._hass||!this._config)return;let e;try{e=this.editor.serviceData()}catch(s){this.note(s.message,!0);return}this.saving=!0,this.requestUpdate();try{await this._hass.callService("smokewatch","set_zones",{...e},{entity_id:this._config.entity}),this.editor.saved(),this.note(`Saved ${e.zones.length} zone(s)`,!1)}catch(s){let i=s.message??String(s);this.note(`Not saved: ${i}`,!0)}finally{this.saving=!1,this.requestUpdate()}}async maskBox(e){let s=this.boxes[e];this.boxMenu=null,!(!s||this.editor.maskBox(s)<0)&&await this.save()}async revert(){let e=this.masksEntity&&this._hass?this._hass.states[this.masksEntity]:void 0;this.editor.load(L(e?.attributes.local),!0),this.message=null,this.requestUpdate()}imageUrl(){let e=this.imageEntity&&this._hass?.states[this.imageEntity],s=e?e.attributes.entity_picture:void 0;if(typeof s=="string")return this._hass?.hassUrl?this._hass.hassUrl(s):s}onImageLoad(e){let s=e.currentTarget;if(s.naturalWidth>0){let i=s.naturalHeight/s.naturalWidth;Math.abs(i-this.aspect)>.001&&(this.aspect=i,this.requestUpdate())}}points(e,s){return e.map(([i,r])=>`${i*v},${r*s}`).join(" ")}renderOverlay(){let e=v*this.aspect,s=v/(this.displayedWidth||320),i=2*s,r=this.editor.selected,o=this.editor.drawing;return p`<svg
      viewBox="0 0 ${v} ${e}"
      preserveAspectRatio="none"
      class=${o!==null?"drawing":""}
      data-testid="overlay"
      @pointerdown=${this.onFramePointerDown}
      @pointermove=${this.onFramePointerMove}
      @pointerup=${this.onFramePointerUp}
      @pointercancel=${this.onFramePointerUp}
    >
      ${this.remoteZones.map(h=>E`<polygon class="remote" data-testid="remote-mask" points=${this.points(h.polygon,e)}
            stroke-width=${i}><title>${h.name} (Pyronear API, read-only)</title></polygon>`)}
      ${this.editor.zones.map((h,a)=>E`<polygon class="zone ${h.rule} ${h.enabled?"":"disabled"} ${r?.zone===a?"selected":""}" data-testid="zone" data-name=${h.name} points=${this.points(h.polygon,e)}
            stroke-width=${i}><title>${h.name}</title></polygon>`)}
      ${this.boxes.map(([h,a,l,u],d)=>E`<rect class="box" data-testid="box" data-index=${d} x=${h*v} y=${a*e}
            width=${(l-h)*v} height=${(u-a)*e} stroke-width=${i}></rect>`)}
      ${r&&this.editor.zones[r.zone]?this.editor.zones[r.zone].polygon.map(([h,a],l)=>E`<circle class="handle ${r.point===l?"selected":""}" data-testid="handle"
                cx=${h*v} cy=${a*e} r=${lt*s} stroke-width=${i}></circle>`):c}
      ${o!==null&&o.length?E`<polygon class="draft" points=${this.points(o,e)} stroke-width=${i}></polygon>
          ${o.map(([h,a])=>E`<circle class="handle" cx=${h*v} cy=${a*e} r=${lt*s*.7}
                stroke-width=${i}></circle>`)}`:c}
    </svg>`}renderBoxMenu(){if(this.boxMenu===null)return c;let e=this.boxes[this.boxMenu];if(!e)return c;let s=Math.min(e[0],.7)*100,i=Math.min(e[3],.85)*100;return p`<div class="menu" style="left:${s}%;top:${i}%">
      <button class="primary" data-testid="mask-this" @click=${()=>this.maskBox(this.boxMenu)}>
        Mask this
      </button>
      <button @click=${()=>(this.boxMenu=null,this.requestUpdate())}>✕</button>
    </div>`}renderZoneRow(e,s){let i=this.editor.selected,r=i?.zone===s;return p`<div class="row ${r?"selected":""}" data-testid="zone-row">
      <input
        type="text"
        aria-label="Zone name"
        data-testid="zone-name"
        .value=${e.name}
        @focus=${()=>(this.editor.select(s),this.requestUpdate())}
        @input=${o=>(this.editor.rename(s,o.target.value),this.requestUpdate())}
      />
      <select
        aria-label="Rule"
        data-testid="zone-rule"
        @change=${o=>(this.editor.setRule(s,o.target.value),this.requestUpdate())}
      >
        ${at.map(o=>p`<option value=${o} ?selected=${e.rule===o}>
              ${o==="inside"?"inside (mostly in zone)":"iou (look-alike box)"}
            </option>`)}
      </select>
      <label
        ><input
          type="checkbox"
          data-testid="zone-enabled"
          .checked=${e.enabled}
          @change=${o=>(this.editor.setEnabled(s,o.target.checked),this.requestUpdate())}
        />
        on</label
      >
      ${r&&i?.point!==null&&i?.point!==void 0?p`<button
              data-testid="delete-point"
              ?disabled=${e.polygon.length<=3}
              @click=${()=>(this.editor.deletePoint(s,i.point),this.requestUpdate())}
            >
              Delete point
            </button>
            <button @click=${()=>(this.editor.insertPoint(s,i.point),this.requestUpdate())}>
              Add point
            </button>`:p`<button @click=${()=>(this.editor.select(s),this.requestUpdate())}>Edit</button>`}
      <button
        data-testid="zone-delete"
        aria-label="Delete zone"
        @click=${()=>(this.editor.deleteZone(s),this.requestUpdate())}
      >
        Delete
      </button>
    </div>`}render(){if(!this._config)return p``;let e=this._hass?.states[this._config.entity],s=this.imageUrl(),i=this.editor.drawing,r=this.remoteZones,o=this.editor.errors;return p`<ha-card>
      <div class="header">
        <span>${this._config.title??"Smoke zones"}</span>
        <span class="hint">${e?e.state==="on"?"SMOKE":"no smoke":"entity not found"}</span>
      </div>
      <div class="frame">
        ${s?p`<img src=${s} alt="Latest scored frame" data-testid="frame" @load=${this.onImageLoad} />`:p`<div class="placeholder" style="aspect-ratio:${1/this.aspect}"></div>`}
        ${this.renderOverlay()} ${this.renderBoxMenu()}
      </div>
      <div class="toolbar">
        ${i===null?p`<button data-testid="add-zone" @click=${()=>(this.editor.startDrawing(),this.note("Tap the picture to add points; tap the first point or Finish to close",!1))}>
              Add zone
            </button>`:p`<button class="primary" data-testid="finish" ?disabled=${!this.editor.canFinish} @click=${()=>this.finishDrawing()}>
                Finish
              </button>
              <button @click=${()=>(this.editor.undoPoint(),this.requestUpdate())}>Undo point</button>
              <button @click=${()=>(this.editor.cancelDrawing(),this.message=null,this.requestUpdate())}>Cancel</button>`}
        <button
          class="primary"
          data-testid="save"
          ?disabled=${!this.editor.dirty||this.saving||o.length>0}
          @click=${()=>this.save()}
        >
          Save
        </button>
        ${this.editor.dirty?p`<button @click=${()=>this.revert()}>Revert</button>`:c}
      </div>
      ${this.message||o.length?p`<div class="status ${this.message?.error||o.length?"error":""}" data-testid="status">
            ${o.length?o.join("; "):this.message?.text}
          </div>`:c}
      <div class="zones">
        ${this.editor.zones.map((h,a)=>this.renderZoneRow(h,a))}
        ${r.length?p`<div class="readonly">
              Pyronear API masks (read-only): ${r.map(h=>h.name).join(", ")}
            </div>`:c}
        ${this.editor.zones.length===0&&r.length===0?p`<div class="hint">No zones. Add one, or tap a detection box to mask it.</div>`:c}
      </div>
    </ha-card>`}updated(e){let s=this.renderRoot.querySelector(".frame");s&&this.displayedWidth===0&&(this.displayedWidth=s.getBoundingClientRect().width,this.displayedWidth>0&&this.requestUpdate())}};O.styles=W`
    :host {
      display: block;
    }
    ha-card {
      overflow: hidden;
    }
    .header {
      display: flex;
      align-items: center;
      justify-content: space-between;
      gap: 8px;
      padding: 12px 16px 8px;
      font-size: 1.2em;
    }
    .frame {
      position: relative;
      line-height: 0;
      background: #222;
      user-select: none;
      -webkit-user-select: none;
    }
    .frame img,
    .frame .placeholder {
      width: 100%;
      display: block;
    }
    .frame .placeholder {
      aspect-ratio: 16 / 9;
    }
    .frame svg {
      position: absolute;
      inset: 0;
      width: 100%;
      height: 100%;
      touch-action: none;
    }
    svg.drawing {
      cursor: crosshair;
    }
    .zone {
      fill: rgba(3, 169, 244, 0.25);
      stroke: #03a9f4;
      cursor: pointer;
    }
    .zone.disabled {
      fill: rgba(158, 158, 158, 0.15);
      stroke: #9e9e9e;
      stroke-dasharray: 6 4;
    }
    .zone.iou {
      fill: rgba(255, 152, 0, 0.22);
      stroke: #ff9800;
    }
    .zone.selected {
      stroke: #fff;
    }
    .remote {
      fill: rgba(255, 255, 255, 0.12);
      stroke: #bdbdbd;
      stroke-dasharray: 4 4;
      pointer-events: none;
    }
    .box {
      fill: rgba(244, 67, 54, 0.08);
      stroke: #f44336;
      cursor: pointer;
    }
    .handle {
      fill: #fff;
      stroke: #03a9f4;
      cursor: grab;
    }
    .handle.selected {
      fill: #03a9f4;
    }
    .draft {
      fill: rgba(76, 175, 80, 0.2);
      stroke: #4caf50;
      pointer-events: none;
    }
    .menu {
      position: absolute;
      line-height: normal;
      transform: translate(0, 4px);
      z-index: 1;
    }
    .toolbar,
    .zones,
    .status {
      padding: 8px 16px;
      display: flex;
      flex-wrap: wrap;
      gap: 8px;
      align-items: center;
    }
    .zones {
      flex-direction: column;
      align-items: stretch;
    }
    .row {
      display: flex;
      flex-wrap: wrap;
      gap: 8px;
      align-items: center;
      padding: 4px 0;
      border-bottom: 1px solid var(--divider-color, #ddd);
    }
    .row.selected {
      background: var(--secondary-background-color, #f5f5f5);
    }
    .row input[type="text"] {
      flex: 1 1 140px;
      min-width: 0;
      min-height: 36px;
      font: inherit;
    }
    button,
    select {
      min-height: 40px;
      min-width: 40px;
      font: inherit;
      border-radius: 6px;
      border: 1px solid var(--divider-color, #bbb);
      background: var(--card-background-color, #fff);
      color: var(--primary-text-color, #000);
      padding: 0 12px;
    }
    button.primary {
      background: var(--primary-color, #03a9f4);
      color: var(--text-primary-color, #fff);
      border: none;
    }
    button:disabled {
      opacity: 0.5;
    }
    .error {
      color: var(--error-color, #db4437);
    }
    .hint {
      color: var(--secondary-text-color, #666);
      font-size: 0.9em;
    }
    .readonly {
      color: var(--secondary-text-color, #666);
      font-size: 0.9em;
    }
  `;var Tt="smokewatch-zone-card";function Nt(n){customElements.get(Tt)||customElements.define(Tt,n?O:class extends O{})}Nt(!0);var ee=window.customElements,Dt=0,Bt=window.setInterval(()=>{Dt+=1,window.customElements!==ee?(Nt(!1),window.clearInterval(Bt)):Dt>=600&&window.clearInterval(Bt)},100);window.customCards=window.customCards??[];window.customCards.some(n=>n.type==="smokewatch-zone-card")||window.customCards.push({type:"smokewatch-zone-card",name:"SmokeWatch zones",description:"Draw a camera's exclusion zones on its latest scored frame; mask a detection box."});export{O as SmokeWatchZoneCard};
